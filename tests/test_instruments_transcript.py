"""The exact SCPI the driver sends for a full acquisition (a recorded fixture: any change is a
visible diff), and a replay of recorded instrument responses, the boundary with a physical
N6705A. Regenerate the fixtures with HARNESS_UPDATE_FIXTURES=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from harness.config.board import SupplySettings
from harness.instruments.edges import find_pulse
from harness.instruments.measure import MeasureSettings, measure_inferences
from harness.instruments.n6705a import N6705A
from harness.instruments.timing import CycleCounterTiming, PaTriggerTiming
from harness.sim.n6705a import SimN6705A
from harness.sim.n6705a.pulse_board import PulseBoard
from harness.sim.n6705a.replay import RecordingProxy, ReplayServer
from harness.sim.n6705a.transcript import BLOCK, HOST, Transcript

FIXTURES = Path(__file__).parent / "fixtures" / "scpi"
UPDATE = os.environ.get("HARNESS_UPDATE_FIXTURES") == "1"
SUPPLY = SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2)


def _check_fixture(name: str, text: str, header: str) -> None:
    path = FIXTURES / name
    if UPDATE:
        path.write_text(header + text)
    recorded = Transcript.load(path)
    assert recorded.dumps() == text, f"SCPI changed; review and regenerate {path} (HARNESS_UPDATE_FIXTURES=1)"


def test_full_acquisition_sends_exactly_the_recorded_commands() -> None:
    with PulseBoard(width_s=1e-3) as board, SimN6705A() as sim:
        sim.attach(1, board.bus, "N6781A").wire_pin(1, board.bus)
        with N6705A.open(sim.resource) as pa:
            pa.apply_supply(SUPPLY, settle_s=0)
            measure_inferences(pa, board, board.clock_hz, [PaTriggerTiming(), CycleCounterTiming(board.clock_hz)],
                               MeasureSettings(n=2, gap_us=5000), trigger_pin=1)
        sent = sim.transcript.dumps(commands_only=True)
    _check_fixture("n6705a_acquisition.txt", sent,
                   "# Commands the N6705A driver sends for: open, supply on, 2 pin-triggered acquisitions\n"
                   "# (1 ms inference, 20.48 us), output off. Recorded from the simulated N6705A.\n")


def _replay_scenario(resource: str, board: PulseBoard | None):
    """Open, supply on, one pin-triggered record around a 0.3 ms pulse, output off."""
    with N6705A.open(resource) as pa:
        pa.apply_supply(SUPPLY, settle_s=0)
        plan = pa.configure_acquisition(0.6e-3, 0.2e-3, trigger_pin=1, sample_interval_s=20.48e-6)
        pa.arm()
        if board is not None:
            board.infer(1, 0, 1000)
        return plan, pa.fetch()


def _record_through_proxy() -> tuple[Transcript, Transcript]:
    with PulseBoard(width_s=0.3e-3) as board, SimN6705A() as sim:
        sim.attach(1, board.bus, "N6781A").wire_pin(1, board.bus)
        with RecordingProxy(("127.0.0.1", sim.port)) as proxy:
            _replay_scenario(proxy.resource, board)
        return proxy.transcript, sim.transcript


def test_recording_proxy_captures_both_directions_byte_exact() -> None:
    via_proxy, at_server = _record_through_proxy()
    assert via_proxy.dumps() == at_server.dumps()
    kinds = {e.kind for e in via_proxy.entries}
    assert {HOST, BLOCK} <= kinds  # REAL blocks were recorded as blocks
    if UPDATE:
        (FIXTURES / "n6705a_replay.txt").write_text(
            "# One pin-triggered N6705A record (0.3 ms, 30 mA pulse on 10 mA idle, 20.48 us), recorded with\n"
            "# RecordingProxy in front of the simulated N6705A; record a real one the same way.\n" + via_proxy.dumps()
        )


def test_driver_against_recorded_instrument_responses() -> None:
    recorded = Transcript.load(FIXTURES / "n6705a_replay.txt")
    with ReplayServer(recorded) as replay:
        plan, wf = _replay_scenario(replay.resource, None)
    assert replay.mismatches == [], replay.mismatches
    assert replay.finished, replay.remaining
    assert plan.interval_s == pytest.approx(20.48e-6) and plan.real_format and plan.big_endian
    assert len(wf) == plan.points and wf.voltage_measured
    assert np.all(wf.voltage_v == pytest.approx(3.3))
    pre = wf.current_a[: plan.pretrigger_points]
    assert np.all(pre == pytest.approx(0.010))
    pulse = find_pulse(wf, plan.pretrigger_points)
    assert pulse.duration_s == pytest.approx(0.3e-3, abs=plan.interval_s)
    assert pulse.active_a == pytest.approx(0.030, rel=1e-6)
