"""`harness measure` (n measured inferences: latency, power, energy) and `harness rig doctor`
(is every instrument, serial port and probe of a rig reachable?)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from harness.config.board import BoardConfig, load_board
from harness.config.rig import RigConfig, load_rig
from harness.errors import ConfigError, HarnessError
from harness.instruments import registry
from harness.instruments.detect import detect_command
from harness.instruments.doctor import doctor_command
from harness.instruments.energy import UNITS, InferenceMeasurement, summarize
from harness.sim.rig import RigResources

console = Console()
app = typer.Typer(help="Inspect the bench: probes, serial ports, instruments.", no_args_is_help=True)


@app.callback()
def _rig_group() -> None:
    """Inspect the bench: probes, serial ports, instruments."""


app.command("detect")(detect_command)


# -- bench endpoints -------------------------------------------------------------------------
@contextmanager
def rig_endpoints(rig: RigConfig, boards: list[BoardConfig] | None = None
                  ) -> Iterator[Callable[[str], tuple[str, str]]]:
    """``resolve(board) -> (power-monitor address, DUT serial port)`` with the rig's 'sim'
    values resolved (simulated parts run for the duration); '' when the rig has no monitor."""
    if boards is None:
        boards = [load_board(d.board) for d in rig.duts]
    with RigResources(rig, boards) as res:

        def resolve(board: str) -> tuple[str, str]:
            mon = res.monitor(board)
            return (mon.address if mon is not None else ""), res.serial_url(board)

        yield resolve


def _flash(board: BoardConfig, probe: str | None, firmware: Path) -> None:
    from harness.flash import flasher_for

    flasher_for(board, probe=probe).program(firmware, verify=True)


# -- measure ---------------------------------------------------------------------------------
def _input_bytes(path: Path | None, size: int) -> bytes:
    """The input tensor: a file of exactly ``size`` bytes, or a fixed pseudo-random one (seed 0)
    so repeated runs feed the same data."""
    if path is None:
        return np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    data = path.read_bytes()
    if len(data) != size:
        raise HarnessError(f"{path}: {len(data)} bytes, the model's input is {size} bytes")
    return data


def run_measurement(board_name: str, rig_name: str, firmware: Path | None, n: int = 8, *, flash: bool = True,
                    gap_us: int = 20_000, out: Path | None = None, input_file: Path | None = None
                    ) -> tuple[list[InferenceMeasurement], Path]:
    """Flash (optional), power the board from its monitor, measure n inferences, store JSON.
    The expected latency comes from a calibration inference, timed on the monitor when the
    on-chip counter wraps (as the campaign does); a rig without a monitor measures latency only."""
    from harness.dut.link import DutLink
    from harness.instruments.measure import MeasureSettings, measure_inferences
    from harness.instruments.safety import terminate_as_exit
    from harness.instruments.sources import build_timing_sources

    board, rig = load_board(board_name), load_rig(rig_name)
    dut = rig.dut_for(board.name)
    if dut is None:
        raise ConfigError(rig.source_file or rig_name, [f"no [[duts]] entry for board {board.name!r}"])
    settings = MeasureSettings(n=n, gap_us=gap_us, sample_interval_s=rig.power_analyzer.sample_interval_s,
                               cross_check_tolerance=rig.cross_check_tolerance)
    with terminate_as_exit(), RigResources(rig, [board]) as res, contextlib.ExitStack() as stack:
        where = res.monitor(board.name)
        pa = None
        if where is not None:
            pa = registry.load(registry.POWER_MONITORS, where.driver).from_resource(where)
            stack.callback(_release, pa, f"{board.name}: {where.driver} channel {where.channel}")
            pa.apply_supply(board.supply, settle_s=rig.power_analyzer.settle_s)
        if flash:
            if firmware is None:
                raise HarnessError("--firmware is required unless --no-flash is given")
            _flash(board, res.probe(board.name), firmware)
        sources = build_timing_sources(rig, board, with_monitor=pa is not None)
        if not sources:
            raise HarnessError(f"rig {rig.name!r} has no power monitor and no timing source that works without one "
                               "(add cycle-counter, scope or logic-analyzer to [[timing]])")
        for s in sources:
            stack.callback(s.close)
        trigger = dut.trigger_pin if any(s.needs_monitor for s in sources) else None
        with DutLink(res.serial_url(board.name), baudrate=dut.baudrate or board.uart.baudrate) as link:
            link.resync()
            info = link.identify()
            link.load_input(_input_bytes(input_file, info.input_bytes))
            results = measure_inferences(pa, link, board.clock_hz, sources, settings, trigger_pin=trigger)
        identity = pa.identity if pa is not None else None
    path = out or Path("results") / "measure" / f"{board.name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    _store(path, board, rig, firmware, identity, settings, results, dut=info)
    return results, path


def _release(pa: Any, what: str) -> None:
    """On every exit path: output off, confirmed (retried over a fresh connection), then closed;
    an output that stays unconfirmed is a loud failure, never swallowed."""
    from harness.instruments.errors import OutputOffUnconfirmed
    from harness.instruments.safety import switch_off_confirmed

    msg = switch_off_confirmed(pa, what)
    with contextlib.suppress(Exception):
        pa.close()
    if msg is not None:
        console.print(f"[bold red]SAFETY: {msg}[/]")
        raise OutputOffUnconfirmed(msg)


def _store(path: Path, board: BoardConfig, rig: RigConfig, firmware: Path | None, identity: Any, settings: Any,
           results: list[InferenceMeasurement], dut: Any = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "board": board.name, "rig": rig.name, "firmware": str(firmware) if firmware else None,
        "board_simulated": board.simulated,
        "analyzer": identity.__dict__ if identity else None, "settings": settings.__dict__, "units": UNITS,
        # what the firmware says it runs: `harness compare` matches measure files by it
        "dut": {k: getattr(dut, k) for k in ("model", "model_hash", "build_id", "numeric")} if dut else None,
        "inferences": [r.to_dict() for r in results],
        "summary": {k: {"mean": m, "std": s} for k, (m, s) in summarize(results).items()},
    }
    path.write_text(json.dumps(doc, indent=2, default=str))


def _val(x: float, scale: float, digits: int) -> str:
    """A value in display units; NaN (a latency-only rig has no power) is 'n/a'."""
    return "n/a" if not np.isfinite(x) else f"{x * scale:.{digits}f}"


def results_table(results: list[InferenceMeasurement]) -> Table:
    table = Table(title="Per-inference measurements")
    for col in ("#", "latency (ms)", "power (mW)", "energy (mJ)", "net energy (mJ)", "idle (mW)", "cross-check"):
        table.add_column(col, justify="right")
    for r in results:
        check = "-" if r.cross_check_ok is None else f"{'ok' if r.cross_check_ok else 'FAIL'} {r.cross_check_deviation:.2%}"
        table.add_row(str(r.index), _val(r.latency_s, 1e3, 4), _val(r.power_w, 1e3, 3), _val(r.energy_j, 1e3, 5),
                      _val(r.energy_net_j, 1e3, 5), _val(r.baseline_power_w, 1e3, 3), check)
    summary = summarize(results)
    lat, pw, en = summary["latency_s"], summary["power_w"], summary["energy_j"]

    def ms(pair: tuple[float, float], scale: float, digits: int) -> str:
        return "n/a" if not np.isfinite(pair[0]) else f"{_val(pair[0], scale, digits)}±{_val(pair[1], scale, digits)}"

    table.add_row("mean±std", ms(lat, 1e3, 4), ms(pw, 1e3, 3), ms(en, 1e3, 5), "", "", "", style="bold")
    return table


def measure(
    board: str = typer.Option(..., "--board", "-b", help="Board name or boards/<name>.toml"),
    rig: str = typer.Option("sim", "--rig", "-r", help="Rig name or instruments/<rig>.toml"),
    firmware: Path | None = typer.Option(None, "--firmware", "-f", help="Firmware image to flash first"),
    n: int = typer.Option(8, "-n", min=1, help="Measured inferences (seed 002: 8)"),
    no_flash: bool = typer.Option(False, "--no-flash", help="The firmware is already on the board"),
    gap_us: int = typer.Option(20_000, "--gap-us", min=0, help="Idle time before each inference"),
    out: Path | None = typer.Option(None, "--out", "-o", help="JSON file for the per-inference results"),
    input_file: Path | None = typer.Option(None, "--input", help="Raw input tensor (default: fixed random bytes)"),
) -> None:
    """Measure latency, power and energy of flashed firmware: n inferences, each in its own
    power-monitor record triggered by the board's GPIO (N6705A, PPK2, Joulescope, or any installed
    monitor; on a rig without one, latency only). Long inferences that wrap the on-chip counter
    are timed on the monitor automatically; no extra flags are needed."""
    results, path = run_measurement(board, rig, firmware, n, flash=not no_flash, gap_us=gap_us, out=out,
                                    input_file=input_file)
    console.print(results_table(results))
    bad = [r.index for r in results if r.cross_check_ok is False]
    if bad:
        console.print(f"[yellow]warning:[/] timing sources disagree beyond the rig's tolerance on inferences {bad}")
    console.print(f"stored {len(results)} inferences in {path}")


# -- rig doctor ------------------------------------------------------------------------------
def drivers_table() -> Table:
    """Every installed driver (entry points), so a third-party package shows up, and whether
    it imports."""
    table = Table(title="installed drivers")
    for col in ("kind", "name", "provided by", "loads"):
        table.add_column(col)
    for d in registry.installed():
        try:
            registry.load(d.group, d.name)
            ok = "[green]yes[/]"
        except HarnessError as exc:
            ok = f"[red]no[/]: {exc}"
        table.add_row(d.kind, d.name, f"{d.distribution} ({d.target})", ok)
    return table


app.command("doctor")(doctor_command)
