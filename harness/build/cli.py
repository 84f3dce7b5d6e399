"""`harness build`: one artifact + one board -> firmware folder."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def build(
    model: Path = typer.Option(..., "--model", "-m", help="Artifact folder (holds artifact.json) from `harness compress`."),
    board: str = typer.Option(..., "--board", "-b", help="Board name from boards/ (e.g. sim-m4) or a board .toml path."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for firmware.elf/.bin/.hex, footprint.json, build.json."),
    dsp: bool | None = typer.Option(None, "--dsp/--no-dsp", help="SIMD (DSP extension) kernels; default on for M4/M7."),
    sparse: str = typer.Option("auto", help="Sparse weight storage passed to the code generator (auto, on, off)."),
    backend: str = typer.Option("portable", help="Kernel backend: portable (our runtime) or cmsis-nn (int8; needs CMSIS_NN_PATH)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse an identical earlier build from the cache."),
    cache_dir: Path | None = typer.Option(None, help="Cache folder (default $HARNESS_CACHE_DIR or ~/.cache/harness/firmware)."),
    mbed_os: Path | None = typer.Option(
        None, help="Mbed CE checkout for Mbed boards (default $MBED_OS_PATH, else the --rig file's mbed_os)."
    ),
    rig: str | None = typer.Option(None, "--rig", "-r", help="Rig file whose mbed_os names the Mbed CE tree."),
    generate_only: bool = typer.Option(
        False, "--generate-only", help="Mbed boards: write the CMake project and print its build commands, compile nothing."
    ),
    opt_level: str | None = typer.Option(None, "--opt-level", "-O", help="Optimisation level: O0, O1, O2 (default), O3, Os, Oz, Og."),
    cflags: list[str] = typer.Option([], "--cflag", help="Extra C flag, e.g. --cflag=-DFOO=1 (repeatable)."),
    template: str | None = typer.Option(None, "--template", help="Firmware template: bare-metal or mbed (default: the board's)."),
) -> None:
    """Generate C for a compressed model and cross-compile the benchmark firmware for a board.

    Simulated boards get the bare-metal image (arm-none-eabi-gcc); real boards get an Mbed CE
    project compiled out of tree against an Mbed CE checkout (nothing is written into it; without
    one the command fails and says how to get one). Writes footprint.json (flash/RAM by section,
    weights, arena, stack, fits) and build.json (build id, firmware SHA-256, toolchain, cache hit).
    """
    from rich.console import Console

    from harness.build.cache import default_cache_dir
    from harness.build.firmware import build_firmware
    from harness.campaign.build_options import DEFAULT, with_overrides
    from harness.config import load_board

    console = Console()
    board_cfg = load_board(board)
    if mbed_os is None and rig is not None:
        from harness.config.rig import load_rig

        rig_tree = load_rig(rig, check_boards=False).mbed_os
        mbed_os = Path(rig_tree) if rig_tree and not os.environ.get("MBED_OS_PATH") else None
    try:  # the same options a campaign's [[build]] axis takes (harness.campaign.build_options)
        opts = with_overrides(DEFAULT, {"opt_level": opt_level and opt_level.lstrip("-"), "dsp": dsp,
                                        "backend": backend, "sparse": sparse, "extra_cflags": cflags,
                                        "template": template})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if board_cfg.build.template == "mbed" and not generate_only:
        console.print(f"{board_cfg.name}: Mbed CE build (target {board_cfg.flash.mbed_target}); the first build of a "
                      "board compiles Mbed OS too (about a minute)", highlight=False)  # fmt: skip
    result = build_firmware(
        model,
        out_dir=out,
        cache_dir=(cache_dir or default_cache_dir()) if cache else None,
        mbed_os=mbed_os,
        generate_only=generate_only,
        **opts.build_kwargs(board_cfg),
    )
    console.print(f"[bold]{result.board}[/]: {result.status} (build {result.build_id}, {result.seconds:.2f} s)")
    if result.footprint:
        fl, ram = result.footprint.flash, result.footprint.ram
        console.print(
            f"  flash {fl.total} / {fl.available} B (code {fl.code}, weights {fl.weights})  "
            f"RAM {ram.total} / {ram.available} B (arena {ram.arena}, stack {ram.stack})"
        )
        console.print(f"  {result.elf}\n  sha256 {result.firmware_sha256}")
    else:
        console.print(f"  project: {result.project_dir}\n  build it with:")
        for cmd in result.commands:
            console.print(f"    {cmd}", highlight=False, markup=False)
