"""Instrument sessions that heal, and an output-off that is confirmed or reported: the N6705A
driver and the bench against the simulated instrument over real TCP (pyvisa-py), with the
instrument's connections killed (as a reboot or a pulled cable does) or the instrument gone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import pyvisa

from harness.config.board import SupplySettings
from harness.instruments.errors import InstrumentConnectionError
from harness.instruments.measure import MeasureSettings, measure_inferences
from harness.instruments.n6705a import N6705A
from harness.instruments.timing import CycleCounterTiming, PaTriggerTiming
from harness.sim.n6705a import SimN6705A
from harness.sim.n6705a.pulse_board import PulseBoard

SUPPLY = SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconnect attempts back off from 10 ms instead of 200 ms: the same sequence, sooner."""
    import harness.instruments.n6705a as drv

    monkeypatch.setattr(drv, "RECONNECT_BACKOFF_S", 0.01)


@pytest.fixture
def board() -> Iterator[PulseBoard]:
    with PulseBoard(width_s=1e-3) as b:
        yield b


@pytest.fixture
def sim(board: PulseBoard) -> Iterator[SimN6705A]:
    with SimN6705A(fetch_timeout_s=2.0) as s:
        s.attach(1, board.bus, "N6781A").wire_pin(1, board.bus)
        yield s


def _outp(sim: SimN6705A) -> str:
    """The output state, asked on a connection of its own."""
    r = pyvisa.ResourceManager("@py").open_resource(sim.resource, read_termination="\n",
                                                    write_termination="\n", timeout=3000)
    try:
        return r.query("OUTP? (@1)")
    finally:
        r.close()


def test_a_dropped_connection_is_typed_and_reconnect_restores_the_supply(sim: SimN6705A, board: PulseBoard) -> None:
    pa = N6705A.open(sim.resource, timeout_ms=1000)  # a dead session shows as a read timeout
    try:
        pa.apply_supply(SUPPLY, settle_s=0)
        before = pa.identity
        assert sim.drop_connections() == 1
        with pytest.raises(InstrumentConnectionError):
            pa.measure_dc()
        pa.reconnect()
        assert pa.identity == before  # same mainframe, same module
        assert _outp(sim) == "1"  # the supply configuration was re-applied
        sources = [PaTriggerTiming(), CycleCounterTiming(board.clock_hz)]
        (m,) = measure_inferences(pa, board, board.clock_hz, sources, MeasureSettings(n=1, gap_us=2000), trigger_pin=1)
        assert m.latency_s == pytest.approx(1e-3, abs=m.sample_interval_s)
    finally:
        pa.close()
    assert _outp(sim) == "0"


def _bench_on(resource: str, tmp_path: Path) -> object:
    from harness.campaign.bench import Bench
    from harness.config.rig import load_rig

    rig = tmp_path / "bench.toml"
    rig.write_text(f'name = "bench"\n[[duts]]\nboard = "sim-m4"\nprobe = "sim:sim-m4"\nserial = "sim"\n'
                   f'[power_analyzer]\nresource = "{resource}"\ntimeout_ms = 2000\nsettle_s = 0\n')
    return Bench(load_rig(rig), ["sim-m4"])


def test_bench_confirms_output_off_over_a_fresh_connection(sim: SimN6705A, tmp_path: Path) -> None:
    bench = _bench_on(sim.resource, tmp_path)
    with bench:
        bench.power_up(bench.station("sim-m4"))
        assert _outp(sim) == "1"
        sim.drop_connections()  # the first OUTP OFF fails; the retry reconnects
    assert bench.off_unconfirmed == []
    assert _outp(sim) == "0"


def test_bench_reports_an_output_it_cannot_confirm_off(sim: SimN6705A, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    bench = _bench_on(sim.resource, tmp_path)
    with bench:
        bench.power_up(bench.station("sim-m4"))
        sim.stop()  # the instrument is gone: nothing can confirm the output off
    assert len(bench.off_unconfirmed) == 1 and "could NOT be confirmed off" in bench.off_unconfirmed[0]
    assert any("could NOT be confirmed off" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


def test_measure_command_fails_loudly_when_the_output_cannot_be_confirmed_off(sim: SimN6705A) -> None:
    from harness.instruments.cli import _release
    from harness.instruments.errors import OutputOffUnconfirmed

    pa = N6705A.open(sim.resource)
    pa.apply_supply(SUPPLY, settle_s=0)
    sim.drop_connections()
    _release(pa, "board: n6705a channel 1")  # a fresh connection confirms it: no error
    assert _outp(sim) == "0"
    pa = N6705A.open(sim.resource)
    pa.apply_supply(SUPPLY, settle_s=0)
    sim.stop()
    with pytest.raises(OutputOffUnconfirmed, match="could NOT be confirmed off"):
        _release(pa, "board: n6705a channel 1")


@pytest.mark.slow
def test_campaign_survives_killed_analyzer_connections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated N6705A's TCP connections are killed twice mid-campaign: every
    configuration is still measured, each repetition exactly once, and the log says it healed."""
    import sqlite3

    from harness.campaign.session import run_campaign
    from harness.sim.rig import SimRig

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_HOME", str(ROOT))
    with SimRig(["sim-m4"]) as rig_parts:  # the campaign's bench reuses this board and analyzer
        analyzer = rig_parts.analyzer
        rig = tmp_path / "kill.toml"
        rig.write_text(f'name = "kill"\n[[duts]]\nboard = "sim-m4"\nprobe = "sim:sim-m4"\nserial = "sim"\n'
                       f'analyzer_channel = 1\ntrigger_pin = 1\n[power_analyzer]\nresource = "{analyzer.resource}"\n'
                       'timeout_ms = 3000\nsettle_s = 0\n')
        dropped: list[int] = []
        stop = threading.Event()

        def killer() -> None:  # after the 3rd and the 7th record transfer
            for after in (3, 7):
                while not stop.is_set():
                    fetches = sum(1 for c in analyzer.transcript.commands() if c.startswith("FETC:ARR:CURR?"))
                    if fetches >= after:
                        dropped.append(analyzer.drop_connections())
                        break
                    time.sleep(0.05)

        th = threading.Thread(target=killer, daemon=True)
        th.start()
        try:
            summary = run_campaign(ROOT / "tests" / "data" / "tiny-campaign.toml", rig=str(rig),
                                   run_dir=tmp_path / "run", write_report=False)
        finally:
            stop.set()
            th.join()
    assert dropped == [1, 1]
    assert summary.measured == summary.total == 2 and summary.failed == 0
    with sqlite3.connect(tmp_path / "run" / "results.sqlite") as con:
        rows = con.execute("SELECT config_id, repetition FROM measurements").fetchall()
    assert len(rows) == len(set(rows)) == 2 * 4
    log = (tmp_path / "run" / "campaign.log").read_text()
    assert log.count("power monitor reconnected") == 2
