"""One invocation of `harness run`: pick the run folder, open the store, run, report."""

from __future__ import annotations

import functools
import logging
import signal
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness import stop
from harness.campaign.runner import CampaignRunner, RunSummary
from harness.config import load_campaign, load_rig
from harness.errors import HarnessError


def choose_run_dir(output_dir: Path, name: str, run_dir: Path | None, resume: bool, new: bool) -> Path:
    if run_dir is None:
        run_dir = output_dir / name
        if new:
            run_dir = output_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    has_results = (run_dir / "results.sqlite").exists()
    if has_results:  # a folder in use is reported as such, whatever the flags
        from harness.campaign.lock import RunLock

        RunLock(run_dir).check_free()
    if has_results and not resume:
        raise HarnessError(
            f"run folder {run_dir} already holds results: use --resume to continue it, or --new for a fresh folder"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _signal_as_interrupt(stacks_file: Path, signum: int, frame: Any) -> None:
    """Ctrl-C and SIGTERM: unwind through Bench.close() (analyzer outputs off), and ask the
    worker threads to stop too (an interrupt lost on the way is raised again at a safe point).
    A stop that has not completed after stop.GRACE_S ends the process (outputs off first), its
    thread stacks written to ``stacks_file``."""
    from harness.instruments.safety import emergency_off

    stop.request()
    stop.escalate_after(stop.GRACE_S, stacks_file, 130, emergency_off)
    raise KeyboardInterrupt


def run_campaign(campaign_path: Path | str, *, rig: str | None = None, resume: bool = False, new: bool = False,
                 run_dir: Path | None = None, retry_failed: bool = False, write_report: bool = True,
                 console: Console | None = None, build_options: list[str] | None = None,
                 cluster: str | None = None, cluster_wait_s: float = 60.0) -> RunSummary:
    from harness.config.loader import find_config

    console = console or Console()
    path = find_config("campaigns", campaign_path)
    campaign = load_campaign(path)
    campaign_text = path.read_text()
    if build_options:  # harness run --build-option KEY=VALUE (harness.campaign.build_options)
        from harness.campaign.build_options import apply_to_campaign

        campaign, note = apply_to_campaign(campaign, build_options)
        campaign_text += note
    rig_cfg = load_rig(rig or campaign.rig)
    out = Path(campaign.output_dir)
    if not out.is_absolute():
        out = Path.cwd() / out
    run_dir = choose_run_dir(out, campaign.name, run_dir, resume, new)
    from harness.campaign.lock import RunLock

    lock = RunLock(run_dir).acquire()  # one `harness run` per run folder, until this one returns
    try:
        return _run_locked(campaign, campaign_text, rig_cfg, out, run_dir, retry_failed, write_report, console, lock,
                           (cluster, cluster_wait_s))
    finally:
        lock.release()


def _run_locked(campaign: Any, campaign_text: str, rig_cfg: Any, out: Path, run_dir: Path, retry_failed: bool,
                write_report: bool, console: Console, lock: Any,
                cluster: tuple[str | None, float] = (None, 0.0)) -> RunSummary:
    from harness.campaign.display import Display
    from harness.store import ResultStore

    handler = logging.FileHandler(run_dir / "campaign.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("harness")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if lock.took_over:
        root.warning("run folder %s: took over the stale lock of %s", run_dir, lock.describe_previous())
    on_signal = functools.partial(_signal_as_interrupt, run_dir / "stop-stacks.txt")
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    console.print(f"campaign [bold]{campaign.name}[/] -> {run_dir}  (rig {rig_cfg.name})")
    try:
        with ResultStore(run_dir) as store:
            store.start_run(campaign.name, campaign_text, extra={"rig": rig_cfg.name})
            status = "interrupted"
            runner: CampaignRunner | None = None
            try:
                runner = CampaignRunner(campaign, rig_cfg, run_dir, cache_dir=out / ".cache", retry_failed=retry_failed)
                on_cluster = None
                if cluster[0]:  # harness run --cluster: stations on the Ray cluster's rig nodes
                    from harness.campaign.cluster import ClusterCampaign

                    on_cluster = ClusterCampaign(runner, cluster[0], cluster[1])
                with Display(console) as display:
                    runner.display = display
                    summary = (on_cluster or runner).run(store)
                status = "completed"
            finally:
                store.end_run(status)
                if status != "completed" and runner is not None:  # interrupted: still said, last on screen
                    for msg in runner.off_unconfirmed:
                        console.print(f"[bold red]SAFETY: {msg}[/]")
    finally:
        stop.disarm()  # the run unwound: a stop watchdog armed by a signal has nothing left to do
        for sig, old in previous.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)  # None: a handler set from C
        root.removeHandler(handler)
        handler.close()
    _print_summary(console, summary)
    if write_report:
        from harness.report import report

        paths = report(run_dir)
        for p in paths.get("report", []):
            console.print(f"report: {p}")
    if on_cluster is not None and (on_cluster.blocked or on_cluster.interrupted):
        for cid, why in {**on_cluster.interrupted, **on_cluster.blocked}.items():
            console.print(f"[yellow]{cid}: {why}[/]")
        raise HarnessError(f"{len(on_cluster.interrupted)} configuration(s) interrupted, {len(on_cluster.blocked)} "
                           "blocked (see above): run again with --resume when their rigs are back")
    if summary.off_unconfirmed:  # never swallowed: the last thing on screen, and a failing exit
        for msg in summary.off_unconfirmed:
            console.print(f"[bold red]SAFETY: {msg}[/]")
        raise HarnessError("some power-monitor outputs could not be confirmed off (see above and campaign.log)")
    return summary


def _print_summary(console: Console, s: RunSummary) -> None:
    t = Table(title="campaign summary")
    for col in ("configurations", "measured", "failed", "does not fit", "already done", "time"):
        t.add_column(col)
    t.add_row(str(s.total), str(s.measured), str(s.failed), str(s.does_not_fit), str(s.skipped), f"{s.seconds:.0f} s")
    console.print(t)
    if s.stage_times:
        from harness.campaign.stages import summary_line

        console.print(summary_line(s.stage_times))


def print_plan(campaign_path: Path | str, run_dir: Path | None = None, console: Console | None = None) -> None:
    """The expanded matrix, with each configuration's status from an earlier run if there is one."""
    from harness.campaign.matrix import expand
    from harness.config.loader import find_config

    console = console or Console()
    campaign = load_campaign(find_config("campaigns", campaign_path))
    run_dir = run_dir or Path(campaign.output_dir) / campaign.name
    statuses: dict[str, str] = {}
    done: dict[str, int] = {}
    if (run_dir / "results.sqlite").exists():
        from harness.store import ResultStore

        with ResultStore(run_dir, create=False) as store:
            statuses = store.statuses()
            done = {cid: len(store.completed_repetitions(cid)) for cid in statuses}
    t = Table(title=f"{campaign.name}: {run_dir}")
    for col in ("#", "configuration", "status", "repetitions"):
        t.add_column(col)
    for i, p in enumerate(expand(campaign), 1):
        cid = p.config_id
        t.add_row(str(i), cid, statuses.get(cid, "not started"), f"{done.get(cid, 0)}/{campaign.repetitions}")
    console.print(t)
