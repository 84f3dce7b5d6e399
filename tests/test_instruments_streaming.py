"""The streaming power monitors (Nordic PPK2 through ppk2-api, Joulescope through the
pyjoulescope_driver interface) against their simulated counterparts fed by the emulated board:
latency from their digital inputs against the cycle counter and the board's ground truth, energy
against the board's current waveform, the exact bytes / calls each driver exchanges (recorded
fixtures), and the safety refusals."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.config import load_board
from harness.config.rig import DutSettings, PowerAnalyzerSettings, RigConfig, TimingSettings
from harness.instruments.errors import InstrumentConnectionError, SafetyError

BOARD = "sim-m4"
FIXTURES = Path(__file__).parent / "fixtures"
UPDATE = os.environ.get("HARNESS_UPDATE_FIXTURES") == "1"
N = 3


def _rig(kind: str, **pa: object) -> RigConfig:
    return RigConfig(name=f"sim-{kind}", duts=[DutSettings(board=BOARD, probe=f"sim:{BOARD}", trigger_pin=1)],
                     power_analyzer=PowerAnalyzerSettings(kind=kind, resource="sim", settle_s=0, **pa),
                     timing=[TimingSettings(kind="digital-input"), TimingSettings(kind="cycle-counter")])


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from firmware_fixtures.fixture_model import fixture_sources

    from harness.build import build_firmware

    root = tmp_path_factory.mktemp("fw")
    return build_firmware(fixture_sources(rounds=10), load_board(BOARD), root / BOARD, cache_dir=root / "cache").elf


def _measure(rig: RigConfig, firmware: Path) -> tuple[list, object, object]:
    from harness.dut.link import DutLink
    from harness.flash import flasher_for
    from harness.instruments import registry
    from harness.instruments.measure import MeasureSettings, measure_inferences
    from harness.instruments.sources import build_timing_sources
    from harness.sim.rig import RigResources

    board = load_board(BOARD)
    with RigResources(rig, [board]) as res:
        flasher_for(board, probe=res.probe(BOARD)).program(firmware)
        where = res.monitor(BOARD)
        mon = registry.load(registry.POWER_MONITORS, where.driver).from_resource(where)
        sim_part = res.monitor_sims[BOARD]
        try:
            mon.apply_supply(board.supply, settle_s=0)
            with DutLink(res.serial_url(BOARD)) as link:
                link.resync()
                link.load_input(bytes(range(256)) * 3 + bytes(16))
                results = measure_inferences(mon, link, board.clock_hz, build_timing_sources(rig, board),
                                             MeasureSettings(n=N, gap_us=5000, sample_interval_s=20e-6), trigger_pin=1)
        finally:
            mon.close()
        return results, res.simrig[BOARD].bus, (mon, sim_part)


def _against_ground_truth(results: list, bus: object, supply_v: float) -> None:
    edges = bus.edges(0.0)
    rises = [e.time_s for e in edges if e.level == 1][-N:]
    falls = [e.time_s for e in edges if e.level == 0][-N:]
    for r, t0, t1 in zip(results, rises, falls, strict=True):
        true_latency = t1 - t0
        true_energy = supply_v * float(bus.mean_current(np.array([t0]), np.array([t1]))[0]) * true_latency
        assert true_latency > 1e-3
        assert r.timing_source == "digital-input"
        assert abs(r.latency_s - r.latency_by_source_s["cycle-counter"]) <= r.sample_interval_s
        assert abs(r.latency_s - true_latency) <= r.sample_interval_s
        assert abs(r.energy_j / true_energy - 1) <= 0.01, (r.energy_j, true_energy)
        assert r.cross_check_ok is True


@pytest.mark.parametrize("kind", ["ppk2", "joulescope"])
def test_streaming_monitor_latency_and_energy_match_ground_truth(kind: str, firmware: Path) -> None:
    results, bus, (mon, _) = _measure(_rig(kind), firmware)
    assert mon.identity.simulated is True
    _against_ground_truth(results, bus, load_board(BOARD).supply.nominal_v)


def test_ppk2_bytes_match_the_recorded_exchange(firmware: Path) -> None:
    """Every command byte ppk2-api sent, in order, for open / supply on / one capture / off."""
    _, _, (_, sim) = _measure(_rig("ppk2"), firmware)
    sent = [c.hex() for c in sim.commands]
    path = FIXTURES / "ppk2" / "commands.txt"
    if UPDATE:
        path.write_text("# Commands ppk2-api 0.9.2 sent through harness.instruments.ppk2 for: open, source-meter\n"
                        "# supply on at 3.3 V, 3 captures, output off (confirmed). Recorded from the SIMULATED\n"
                        "# PPK2 (harness/sim/ppk2.py); opcodes are ppk2_api.PPK2_Command's. One command per line.\n"
                        + "\n".join(sent) + "\n")
    recorded = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert sent == recorded
    # the protocol as ppk2_api defines it: GET_META_DATA first, source mode, 3300 mV, DUT on
    assert sent[:4] == ["19", "1102", "0d0ce4", "0c01"]  # 3300 mV = (0x0c - 3) * 256 + 0xe4 + 800 - 32


def test_ppk2_sample_encoding_round_trips_through_ppk2_api() -> None:
    """The simulated PPK2's 4-byte samples, decoded by ppk2_api's own conversion (with the
    calibration it read from the simulated PPK2's metadata), give back the currents and logic
    levels that went in, to the ADC's resolution."""
    from ppk2_api.ppk2_api import PPK2_API

    from harness.sim.ppk2 import SimPpk2, encode_samples
    from harness.sim.signals import SignalBus

    sim = SimPpk2(SignalBus(3.3, 0.005)).start()
    try:
        api = PPK2_API(sim.address, timeout=1)
        assert api.get_modifiers()
        api.ser.close()
    finally:
        sim.stop()
    api.current_vdd = 3300
    current = np.array([0.005] * 20 + [0.030] * 20)
    logic = np.array([0] * 20 + [1] * 20)
    samples, bits = api.get_samples(encode_samples(current, logic))
    got = np.array(samples) * 1e-6
    assert list(bits) == list(logic)
    # away from the range switch (the host's spike filter smooths 3 samples after it, as for a real PPK2)
    assert np.allclose(got[:20], 0.005, rtol=1e-3) and np.allclose(got[25:], 0.030, rtol=1e-3)


def test_joulescope_calls_match_the_recorded_exchange(firmware: Path) -> None:
    """Every Driver call the harness made, in order (topics as pyjoulescope_driver names them)."""
    _, _, (_, sim) = _measure(_rig("joulescope"), firmware)
    calls = [" ".join(str(x) for x in c).replace(sim.address, "<device>") for c in sim.calls]
    path = FIXTURES / "joulescope" / "calls.txt"
    if UPDATE:
        path.write_text("# pyjoulescope_driver.Driver calls made by harness.instruments.joulescope for: open, rail check\n"
                        "# and connect, 3 captures at 50 kS/s with GPI 0, disconnect (read back). Recorded against the\n"
                        "# SIMULATED JS220 (harness/sim/joulescope.py); topic names are pyjoulescope_driver's.\n"
                        + "\n".join(calls) + "\n")
    recorded = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert calls == recorded


def test_joulescope_with_the_real_driver_and_no_device_says_so() -> None:
    from harness.instruments.joulescope import JoulescopeMonitor

    with pytest.raises(InstrumentConnectionError, match="not found"):
        JoulescopeMonitor("u/js220/000001")


@contextlib.contextmanager
def _idle_board(bus: object) -> Iterator[None]:
    """A board that only idles: its time advances with the wall clock, as a parked core's does."""
    stop = threading.Event()

    def run() -> None:
        t = 0.0
        while not stop.wait(0.001):
            bus.add_segment(t, t + 0.001, bus.idle_current_a)
            t += 0.001

    th = threading.Thread(target=run, daemon=True)
    th.start()
    try:
        yield
    finally:
        stop.set()
        th.join()


def test_ppk2_refuses_a_voltage_above_the_board_limit_and_sends_nothing() -> None:
    from harness.config.board import SupplySettings
    from harness.instruments.ppk2 import Ppk2Monitor
    from harness.sim.ppk2 import SimPpk2
    from harness.sim.signals import SignalBus

    bus = SignalBus(3.3, 0.005)
    sim = SimPpk2(bus).start()
    try:
        mon = Ppk2Monitor(sim.address)
        before = list(sim.commands)
        with pytest.raises(SafetyError, match="nothing was sent"):
            mon.apply_supply(SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2),
                             voltage_v=4.0)
        assert sim.commands == before
        mon._close_port()
    finally:
        sim.stop()


def test_joulescope_leaves_the_board_disconnected_when_the_rail_is_too_high() -> None:
    from harness.config.board import SupplySettings
    from harness.instruments.joulescope import JoulescopeMonitor
    from harness.sim.joulescope import SimJoulescope
    from harness.sim.signals import SignalBus

    bus = SignalBus(5.0, 0.005)
    sim = SimJoulescope(bus, supply_v=5.0).start()
    try:
        with _idle_board(bus):
            mon = JoulescopeMonitor(sim.address, driver=sim.options["driver"])
            with pytest.raises(SafetyError, match="left disconnected"):
                mon.apply_supply(SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2))
            assert sim.settings["s/i/range/mode"] == "off"
            mon.close()
    finally:
        sim.stop()


def test_ppk2_reconnect_reopens_the_same_unit_and_restores_the_supply() -> None:
    """The shared reopen-with-backoff path (harness.instruments.reconnect) on a real ppk2-api
    session to the simulated PPK2: same unit, supply switched on again over the new session."""
    from harness.config.board import SupplySettings
    from harness.instruments.ppk2 import Ppk2Monitor
    from harness.sim.ppk2 import SimPpk2
    from harness.sim.signals import SignalBus

    power_on = bytes.fromhex("0c01")  # ppk2_api.PPK2_Command.DEVICE_RUNNING_SET, on
    bus = SignalBus(3.3, 0.005)
    sim = SimPpk2(bus).start()
    try:
        mon = Ppk2Monitor(sim.address)
        mon.apply_supply(SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2), settle_s=0)
        assert mon.identity is not None
        assert sim.wait_for_commands(lambda cmds: power_on in cmds)
        serial, ons = mon.identity.serial, sim.commands.count(power_on)
        mon.reconnect()
        assert mon.identity is not None and mon.identity.serial == serial
        # the host's writes return before the simulated PPK2 has read them: wait for them
        assert sim.wait_for_commands(lambda cmds: cmds.count(power_on) == ons + 1), sim.commands
        mon.output_off()
        mon.close()
    finally:
        sim.stop()
