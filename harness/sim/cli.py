"""`harness sim ...`: serve the simulated rig, run an image on one emulated board, list boards."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from harness.config.board import load_board

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command("list")
def list_cmd() -> None:
    """List the simulated boards (sim-* board files) with their core, clock and pyOCD target."""
    from harness.sim.counter import native_error
    from harness.sim.registry import sim_board_names

    for name in sim_board_names():
        b = load_board(name)
        assert b.sim is not None
        c = b.sim.cache
        memory = (
            f"cache {c.size_bytes // 1024}K/{c.ways}w/{c.line_bytes}B miss {c.miss_cycles}"
            if c is not None
            else f"{b.sim.flash_wait_states} ws, no cache"
        )
        typer.echo(
            f"{name:24} {b.core:14} {b.clock_hz / 1e6:6.0f} MHz  flash {b.memory.flash_base:#010x}  "
            f"model {b.sim.cycle_model:13} probe sim:{name:22} target {b.flash.pyocd_target:22} {memory}"
            + ("  ROM float" if b.sim.rom_float else "")
        )
    err = native_error()
    typer.echo(f"native block hook: {'available' if err is None else 'unavailable (' + err + ')'}")


@app.command()
def serve(
    rig: Annotated[str, typer.Option("--rig", help="Rig file whose sim boards to start")] = "sim",
    board: Annotated[
        list[str] | None, typer.Option("--board", "-b", help="Board(s) to start instead of the rig's")
    ] = None,
    pyocd_servers: Annotated[
        bool, typer.Option("--pyocd-servers/--no-pyocd-servers", help="Serve each probe to remote: clients")
    ] = True,
    analyzer: Annotated[
        bool, typer.Option("--analyzer/--no-analyzer", help="Start the simulated N6705A")
    ] = True,
    duration: Annotated[
        float | None, typer.Option("--for", help="Stop after this many seconds (default: until Ctrl-C)")
    ] = None,
    write_rig: Annotated[
        Path | None, typer.Option("--write-rig", help="Write a rig file of the served endpoints (no 'sim' left): "
                                                      "`harness run --rig` it from another process")
    ] = None,
) -> None:
    """Start the simulated rig and print its endpoints (serial URLs, probe uids, pyOCD remote
    servers, VISA resource); runs until Ctrl-C."""
    from harness.sim.rig import SimRig

    sim_rig = (
        SimRig(board, analyzer=analyzer, pyocd_servers=pyocd_servers)
        if board
        else SimRig.from_rig(rig, analyzer=analyzer, pyocd_servers=pyocd_servers)
    )
    with sim_rig:
        for name, ep in sim_rig.endpoints().items():
            typer.echo(
                f"{name}: serial {ep['serial']}  probe {ep['probe']}  pyocd {ep['pyocd_remote'] or '-'}  "
                f"analyzer ch{ep['analyzer_channel']} pin{ep['trigger_pin']}"
            )
        typer.echo(
            f"power analyzer: {sim_rig.visa_resource or '- (not available)'}",
        )
        if write_rig is not None:
            from harness.config import load_rig
            from harness.sim.served import write_served_rig

            if board:
                raise typer.BadParameter("--write-rig serves a rig file's boards: drop --board", param_hint="--write-rig")
            try:
                typer.echo(f"rig file: {write_served_rig(load_rig(rig), sim_rig, write_rig)}")
            except (ValueError, OSError) as exc:
                raise typer.BadParameter(str(exc), param_hint="--write-rig") from None
        typer.echo("ready (Ctrl-C to stop)")
        end = time.monotonic() + duration if duration is not None else None
        reported: set[str] = set()
        try:
            while end is None or time.monotonic() < end:
                time.sleep(0.2)
                for name, err in sim_rig.errors().items():
                    if name not in reported:
                        reported.add(name)
                        typer.echo(f"{name}: {err}", err=True)
        except KeyboardInterrupt:
            pass


@app.command()
def run(
    board: Annotated[str, typer.Option("--board", "-b", help="Simulated board")],
    elf: Annotated[Path, typer.Option("--elf", "-f", help="Image to run (.elf, .hex or .bin)")],
    send: Annotated[
        str | None, typer.Option("--send", help="Text sent to the UART after boot (\\n for newline)")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Stop once the UART output contains this text")
    ] = None,
    max_cycles: Annotated[int, typer.Option("--max-cycles", help="Cycle budget")] = 2_000_000_000,
    timeout: Annotated[float, typer.Option("--timeout", help="Wall-clock budget in seconds")] = 10.0,
) -> None:
    """Run an image on one emulated board (not persisted) and print its UART output and GPIO
    edges; for debugging firmware. Faults and budget overruns are reported as errors."""
    from harness.sim.board import SimBoard

    b = SimBoard(load_board(board), persist=False)
    b.program(elf)
    if send:
        b.uart.inject(send.encode().decode("unicode_escape").encode())
    stop_text = until.encode() if until else None
    res = b.run(
        max_cycles=max_cycles,
        wall_timeout_s=timeout,
        until=(lambda: stop_text in b.uart.output()) if stop_text else None,
    )
    typer.echo(b.uart.output().decode(errors="replace"), nl=False)
    typer.echo(
        f"--- {res.insns} instructions, {res.cycles} cycles ({res.cycles / b.clock_hz * 1e3:.3f} ms simulated), "
        f"{res.wall_s:.3f} s wall, {'native' if b.native else 'python'} hook"
    )
    edges = b.bus.edges()
    for rise, fall in zip(edges[::2], edges[1::2], strict=False):
        typer.echo(
            f"GPIO pulse at cycle {rise.cycle}: {fall.cycle - rise.cycle} cycles "
            f"({(fall.time_s - rise.time_s) * 1e6:.2f} us)"
        )


@app.command()
def crosscheck(
    board: Annotated[
        str, typer.Option("--board", "-b", help="Simulated board (its core picks the QEMU machine)")
    ],
    elf: Annotated[Path, typer.Option("--elf", "-f", help="Image that ends with a semihosting SYS_EXIT")],
    timeout: Annotated[
        float, typer.Option("--timeout", help="Wall-clock budget per emulator in seconds")
    ] = 60.0,
) -> None:
    """Run an image on the emulated board and on QEMU and compare the instructions each retired
    (a mismatch means the emulators diverged)."""
    from harness.sim.board import SimBoard
    from harness.sim.errors import SimError
    from harness.sim.qemu import MACHINES, count_instructions

    cfg = load_board(board)
    machine = MACHINES.get(cfg.core)
    if machine is None:
        raise SimError(f"{board}: no QEMU machine for core {cfg.core} (known: {', '.join(MACHINES)})")
    b = SimBoard(cfg, persist=False)
    b.program(elf)
    res = b.run(max_cycles=None, wall_timeout_s=timeout)
    if res.reason != "exit":
        raise SimError(f"{board}: the image did not end with a semihosting exit ({res.reason})")
    q = count_instructions(elf, machine, timeout)
    typer.echo(f"unicorn ({board}): {res.insns} instructions, {res.cycles} estimated cycles")
    typer.echo(f"qemu ({machine}): {q.instructions} instructions in {q.blocks} blocks")
    if q.instructions != res.insns:
        raise SimError(f"{board}: instruction counts differ (unicorn {res.insns}, qemu {q.instructions})")
    typer.echo("instruction counts agree")


@app.command()
def calibrate(
    core: Annotated[
        list[str] | None, typer.Option("--core", help="CoreMark on this core only (repeatable; default: all)")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Seed model(s): lenet-light, alexnet-light, vgg-light (default: all)"),
    ] = None,
    paper: Annotated[
        bool, typer.Option("--paper/--no-paper", help="Seed 002 Table 3 rows, ratios and the power fit")
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the report here (default: docs/sim-accuracy.md for a full run)"),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a targeted row misses")] = False,
) -> None:
    """Run workloads with published figures on the simulated boards (CoreMark/MHz per core, the
    seed's models on sim-numaker-pfm-m487, seed 002 Table 3 rows) and print simulated vs published
    with the error; a full run rewrites docs/sim-accuracy.md."""
    from harness.config.loader import repo_root
    from harness.errors import StageError
    from harness.sim import calibrate as cal

    cores = core or list(cal.COREMARK_PUBLISHED)
    models = model or list(cal.SEED_MS)
    for c in cores:
        if c not in cal.COREMARK_PUBLISHED:
            raise StageError(f"--core {c!r}: no published CoreMark figure; known: {', '.join(cal.COREMARK_PUBLISHED)}")
    for m in models:
        if m not in cal.SEED_MS:
            raise StageError(f"--model {m!r}: not a seed model; known: {', '.join(cal.SEED_MS)}")
    full = core is None and model is None and paper

    def progress(msg: str) -> None:
        typer.echo(f"... {msg}", err=True)

    rows, fits, seconds = cal.timed(
        lambda: cal.run_calibration(cores=cores, seed_models=models, paper=paper, progress=progress)
    )
    typer.echo(cal.format_table(rows))
    if fits:
        typer.echo(cal.format_fits(fits))
    target = out if out is not None else (repo_root() / "docs" / "sim-accuracy.md" if full else None)
    if target is not None:
        target.write_text(cal.render_report(rows, fits, seconds))
        typer.echo(f"wrote {target}")
    missed = [r for r in rows if r.ok is False]
    typer.echo(f"{len(missed)} of {sum(r.ok is not None for r in rows)} targeted rows miss their target")
    if strict and missed:
        raise typer.Exit(1)
