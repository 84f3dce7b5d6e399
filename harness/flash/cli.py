"""`harness flash`: program a firmware image into a board."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.config.board import load_board
from harness.flash.base import flasher_for


def flash(
    board: Annotated[str, typer.Option("--board", "-b", help="Board name (boards/<name>.toml) or path")],
    firmware: Annotated[Path, typer.Option("--firmware", "-f", help="Image to program: .elf, .hex or .bin")],
    probe: Annotated[
        str | None,
        typer.Option("--probe", "-p", help="Probe unique id (pyocd list); sim boards: sim:<board>"),
    ] = None,
    drive: Annotated[
        Path | None, typer.Option("--drive", help="DAPLink drive to copy to (mass-storage method)")
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Read back and compare after programming")
    ] = True,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds before a hung probe is given up")
    ] = 60.0,
) -> None:
    """Program firmware into a board through pyOCD (real probes or the simulated `sim:` probes) or
    a DAPLink drive, verify it, and leave the board running the new image."""
    cfg = load_board(board)
    flasher = flasher_for(cfg, probe=probe, drive=drive, timeout_s=timeout)
    flasher.program(firmware, verify=verify)
    via = flasher.probe or (str(drive) if drive else "auto-selected probe")
    typer.echo(
        f"programmed {Path(firmware).name} into {cfg.name} via {via}" + (" (verified)" if verify else "")
    )
