"""`harness measure` (n measured inferences: latency, power, energy) and `harness rig doctor`
(is every instrument, serial port and probe of a rig reachable?)."""

from __future__ import annotations

import datetime as dt
import importlib
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
from harness.config.rig import DutSettings, RigConfig, load_rig
from harness.errors import ConfigError, HarnessError, NotBuiltYet
from harness.instruments.energy import UNITS, InferenceMeasurement, summarize
from harness.instruments.errors import InstrumentError

console = Console()
app = typer.Typer(help="Inspect the bench: probes, serial ports, instruments.", no_args_is_help=True)


@app.callback()
def _rig_group() -> None:
    """Inspect the bench: probes, serial ports, instruments."""


# -- bench endpoints -------------------------------------------------------------------------
def _sim_rig_class() -> Any:
    try:
        return importlib.import_module("harness.sim.rig").SimRig
    except (ImportError, AttributeError) as exc:
        raise NotBuiltYet(f"the simulated rig (harness.sim.rig.SimRig) is not available: {exc}") from None


def _uses_sim(rig: RigConfig) -> bool:
    return rig.power_analyzer.resource == "sim" or any(d.serial == "sim" for d in rig.duts)


@contextmanager
def rig_endpoints(rig: RigConfig) -> Iterator[Callable[[str], tuple[str, str]]]:
    """``resolve(board) -> (analyzer VISA resource, DUT serial port)``; 'sim' addresses come from
    the simulated rig, which runs for the duration (harness.sim.rig.SimRig, imported lazily)."""
    duts = {d.board: d for d in rig.duts}
    if not _uses_sim(rig):
        yield lambda board: (rig.power_analyzer.resource, duts[board].serial)
        return
    with _sim_rig_class().from_rig(rig) as sim_rig:

        def resolve(board: str) -> tuple[str, str]:
            resource = rig.power_analyzer.resource
            if resource == "sim":
                if sim_rig.visa_resource is None:
                    raise InstrumentError("the simulated rig started without its N6705A")
                resource = sim_rig.visa_resource
            port = duts[board].serial
            return resource, (sim_rig[board].serial_url if port == "sim" else port)

        yield resolve


def _flash(board: BoardConfig, dut: DutSettings, firmware: Path) -> None:
    from harness.flash import flasher_for

    flasher_for(board, probe=dut.probe).program(firmware, verify=True)


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
    """Flash (optional), power the board from the analyzer, measure n inferences, store JSON."""
    from harness.dut.link import DutLink
    from harness.instruments.measure import MeasureSettings, measure_inferences
    from harness.instruments.n6705a import N6705A
    from harness.instruments.safety import terminate_as_exit
    from harness.instruments.sources import build_timing_sources

    board, rig = load_board(board_name), load_rig(rig_name)
    dut = rig.dut_for(board.name)
    if dut is None:
        raise ConfigError(rig.source_file or rig_name, [f"no [[duts]] entry for board {board.name!r}"])
    if rig.power_analyzer.kind != "n6705a":
        raise NotBuiltYet("measuring without a power analyzer (power_analyzer.kind = 'none') is not supported")
    settings = MeasureSettings(n=n, gap_us=gap_us, sample_interval_s=rig.power_analyzer.sample_interval_s,
                               cross_check_tolerance=rig.cross_check_tolerance)
    with terminate_as_exit(), rig_endpoints(rig) as resolve:
        resource, port = resolve(board.name)
        pa = N6705A.open(resource, dut.analyzer_channel, rig.power_analyzer.backend, rig.power_analyzer.timeout_ms)
        with pa:
            pa.apply_supply(board.supply, settle_s=rig.power_analyzer.settle_s)
            if flash:
                if firmware is None:
                    raise HarnessError("--firmware is required unless --no-flash is given")
                _flash(board, dut, firmware)
            sources = build_timing_sources(rig, board)
            try:
                with DutLink(port, baudrate=dut.baudrate or board.uart.baudrate) as link:
                    link.resync()
                    info = link.identify()
                    link.load_input(_input_bytes(input_file, info.input_bytes))
                    results = measure_inferences(pa, link, board.clock_hz, sources, settings,
                                                 trigger_pin=dut.trigger_pin)
            finally:
                for s in sources:
                    s.close()
            identity = pa.identity
    path = out or Path("results") / "measure" / f"{board.name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    _store(path, board, rig, firmware, identity, settings, results, dut=info)
    return results, path


def _store(path: Path, board: BoardConfig, rig: RigConfig, firmware: Path | None, identity: Any, settings: Any,
           results: list[InferenceMeasurement], dut: Any = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "board": board.name, "rig": rig.name, "firmware": str(firmware) if firmware else None,
        "analyzer": identity.__dict__ if identity else None, "settings": settings.__dict__, "units": UNITS,
        # what the firmware says it runs: `harness compare` matches measure files by it
        "dut": {k: getattr(dut, k) for k in ("model", "model_hash", "build_id", "numeric")} if dut else None,
        "inferences": [r.to_dict() for r in results],
        "summary": {k: {"mean": m, "std": s} for k, (m, s) in summarize(results).items()},
    }
    path.write_text(json.dumps(doc, indent=2, default=str))


def results_table(results: list[InferenceMeasurement]) -> Table:
    table = Table(title="Per-inference measurements")
    for col in ("#", "latency (ms)", "power (mW)", "energy (mJ)", "net energy (mJ)", "idle (mW)", "cross-check"):
        table.add_column(col, justify="right")
    for r in results:
        check = "-" if r.cross_check_ok is None else f"{'ok' if r.cross_check_ok else 'FAIL'} {r.cross_check_deviation:.2%}"
        table.add_row(str(r.index), f"{r.latency_s * 1e3:.4f}", f"{r.power_w * 1e3:.3f}", f"{r.energy_j * 1e3:.5f}",
                      f"{r.energy_net_j * 1e3:.5f}", f"{r.baseline_power_w * 1e3:.3f}", check)
    summary = summarize(results)
    lat, pw, en = summary["latency_s"], summary["power_w"], summary["energy_j"]
    table.add_row("mean±std", f"{lat[0] * 1e3:.4f}±{lat[1] * 1e3:.4f}", f"{pw[0] * 1e3:.3f}±{pw[1] * 1e3:.3f}",
                  f"{en[0] * 1e3:.5f}±{en[1] * 1e3:.5f}", "", "", "", style="bold")
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
    """Measure latency, power and energy of flashed firmware (n inferences, N6705A + GPIO)."""
    results, path = run_measurement(board, rig, firmware, n, flash=not no_flash, gap_us=gap_us, out=out,
                                    input_file=input_file)
    console.print(results_table(results))
    bad = [r.index for r in results if r.cross_check_ok is False]
    if bad:
        console.print(f"[yellow]warning:[/] timing sources disagree beyond the rig's tolerance on inferences {bad}")
    console.print(f"stored {len(results)} inferences in {path}")


# -- rig doctor ------------------------------------------------------------------------------
def _check(rows: list[tuple[str, str, bool, str]], what: str, target: str, fn: Any) -> None:
    try:
        detail = fn()
        rows.append((what, target, True, detail or ""))
    except Exception as exc:  # a doctor reports every failure, it never stops at the first
        rows.append((what, target, False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))


def _check_analyzer(resource: str, backend: str, timeout_ms: int, channels: list[int]) -> str:
    from harness.instruments.n6705a import N6705A
    from harness.instruments.visa import ScpiInstrument, open_resource

    inst = ScpiInstrument(open_resource(resource, backend, timeout_ms), f"N6705 at {resource}")
    try:
        parts = []
        for ch in channels:
            ident = N6705A(inst, ch).identify()
            if ident.stale_errors:
                raise InstrumentError(f"error queue was not empty: {list(ident.stale_errors)}")
            parts.append(f"ch{ch}={ident.module}")
        return f"{ident.model} {ident.serial} fw {ident.firmware}; " + ", ".join(parts)
    finally:
        inst.close()


def _check_visa(resource: str, backend: str, timeout_ms: int) -> str:
    from harness.instruments.visa import ScpiInstrument, open_resource

    inst = ScpiInstrument(open_resource(resource, backend, timeout_ms), resource)
    try:
        idn = inst.query("*IDN?")
        inst.check("startup")
        return idn
    finally:
        inst.close()


def _check_serial(port: str, baudrate: int) -> str:
    import serial

    with serial.serial_for_url(port, baudrate=baudrate, timeout=0.2):
        return "opens"


def _check_probe(uid: str) -> str:
    from pyocd.core.helpers import ConnectHelper

    probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    ids = [p.unique_id for p in probes]
    if uid not in ids:
        raise HarnessError(f"probe {uid} not listed by pyOCD (found: {', '.join(ids) or 'none'})")
    return "listed by pyOCD"


def _check_sigrok(driver: str) -> str:
    import shutil

    if shutil.which("sigrok-cli") is None:
        raise HarnessError("sigrok-cli not installed")
    return f"sigrok-cli present (driver {driver})"


def diagnose(rig: RigConfig, resolve: Callable[[str], tuple[str, str]]) -> list[tuple[str, str, bool, str]]:
    """Reachability checks for every part of the rig; ``resolve(board) -> (resource, port)``."""
    rows: list[tuple[str, str, bool, str]] = []
    pa = rig.power_analyzer
    if pa.kind == "n6705a":
        resource = resolve(rig.duts[0].board)[0]
        channels = sorted({d.analyzer_channel for d in rig.duts})
        _check(rows, "power analyzer", resource, lambda: _check_analyzer(resource, pa.backend, pa.timeout_ms, channels))
    for t in rig.timing:
        if t.kind == "scope" and t.resource:
            _check(rows, f"scope ({t.dialect})", t.resource, lambda t=t: _check_visa(t.resource, pa.backend, pa.timeout_ms))
        elif t.kind == "logic-analyzer":
            _check(rows, "logic analyzer", t.resource or "fx2lafw", lambda t=t: _check_sigrok(t.resource or "fx2lafw"))
    for d in rig.duts:
        port = resolve(d.board)[1]
        _check(rows, f"serial {d.board}", str(port), lambda d=d, port=port: _check_serial(port, d.baudrate or 115200))
        if d.probe:
            _check(rows, f"probe {d.board}", d.probe, lambda d=d: _check_probe(d.probe))
    return rows


@app.command("doctor")
def doctor(rig: str = typer.Argument("sim", help="Rig name or instruments/<rig>.toml")) -> None:
    """Check every instrument, serial port and debug probe of a rig; print OK/FAIL with reasons."""
    cfg = load_rig(rig, check_boards=False)
    with rig_endpoints(cfg) as resolve:
        rows = diagnose(cfg, resolve)
    table = Table(title=f"rig {cfg.name}")
    for col in ("part", "address", "status", "detail"):
        table.add_column(col)
    for what, target, ok, detail in rows:
        table.add_row(what, target, "[green]OK[/]" if ok else "[red]FAIL[/]", detail)
    console.print(table)
    if not all(ok for *_, ok, _ in rows):
        raise typer.Exit(1)
