"""Live progress of a campaign (rich): configuration k of K, current stage, ETA, last result."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Display:
    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.current = ""

    def __enter__(self) -> Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, total: int, skipped: int) -> None:
        self.task = self.progress.add_task("campaign", total=total, completed=skipped)

    def begin(self, point: Any) -> None:
        self.current = point.config_id
        self.progress.update(self.task, description=f"{point.config_id}: waiting for build")

    def preparing(self, point: Any) -> None:
        self.progress.console.log(f"[dim]preparing {point.config_id} (compress, build)[/]")

    def stage(self, point: Any, stage: str, message: str) -> None:
        if point is not None and point.config_id == self.current and self.task is not None:
            self.progress.update(self.task, description=f"{point.config_id}: {stage}")
        prefix = f"{point.config_id} " if point is not None else ""
        self.progress.console.log(f"{prefix}[cyan]{stage}[/] {message}", highlight=False)

    def result(self, point: Any, rep: int, m: Any) -> None:
        self.progress.update(
            self.task,
            description=f"{point.config_id}: rep {rep + 1} {m.latency_s * 1e3:.3f} ms "
            f"{m.power_w * 1e3:.2f} mW {m.energy_j * 1e3:.4f} mWs",
        )

    def end(self, point: Any, status: str) -> None:
        self.progress.advance(self.task)
        colour = {"measured": "green", "failed": "red", "does-not-fit": "yellow"}.get(status, "white")
        self.progress.console.log(f"{point.config_id}: [{colour}]{status}[/]")
