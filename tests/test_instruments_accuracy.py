"""End-to-end accuracy of the measurement chain against ground truth: a scripted board drives
GPIO pulses of known width and current on a SignalBus, the simulated N6705A samples it, the
driver fetches the records over TCP and the harness computes latency and energy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.config.board import SupplySettings
from harness.instruments.measure import MeasureSettings, measure_inferences
from harness.instruments.n6705a import N6705A
from harness.instruments.timing import (
    CycleCounterTiming,
    Evidence,
    PaTriggerTiming,
    PulseTiming,
    TimingSource,
)
from harness.sim.n6705a import SimN6705A
from harness.sim.n6705a.pulse_board import PulseBoard

SUPPLY = SupplySettings(nominal_v=3.3, abs_max_v=3.6, ovp_v=3.5, current_limit_a=0.2)
TINT = 20.48e-6


def _run(board: PulseBoard, *, noise_a: float = 0.0, n: int = 4, trigger_pin: int | None = 1,
         clock_hz: float | None = None, sources=None):
    with SimN6705A(noise_a=noise_a) as sim:
        sim.attach(1, board.bus, "N6781A").wire_pin(1, board.bus)
        with N6705A.open(sim.resource) as pa:
            pa.apply_supply(SUPPLY, settle_s=0)
            srcs = sources or [PaTriggerTiming(), CycleCounterTiming(clock_hz or board.clock_hz)]
            res = measure_inferences(pa, board, board.clock_hz, srcs,
                                     MeasureSettings(n=n, gap_us=5000, sample_interval_s=TINT),
                                     trigger_pin=trigger_pin)
    return res, board.truth[-n:]


@pytest.fixture
def board_factory() -> Iterator:
    boards: list[PulseBoard] = []

    def make(**kw) -> PulseBoard:
        b = PulseBoard(**kw).start()
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.stop()


@pytest.mark.parametrize(
    "width_s, profile, noise_a",
    [
        (1.0e-3, [(1.0, 0.030)], 0.0),
        (1.0e-3, [(0.3, 0.030), (0.4, 0.045), (0.3, 0.035)], 50e-6),
        (3.7e-3, [(0.5, 0.060), (0.5, 0.025)], 100e-6),
        (12.3e-3, [(1.0, 0.030)], 100e-6),
    ],
)
def test_latency_within_one_sample_and_energy_within_1_percent(board_factory, width_s, profile, noise_a) -> None:
    board = board_factory(width_s=width_s, profile=profile, idle_a=0.010)
    results, truth = _run(board, noise_a=noise_a)
    assert len(results) == 4
    for r, t in zip(results, truth, strict=True):
        true_energy = SUPPLY.nominal_v * t.charge_c
        assert r.sample_interval_s == pytest.approx(TINT)
        assert abs(r.latency_s - t.width_s) <= TINT, (r.latency_s, t.width_s)
        assert abs(r.energy_j / true_energy - 1) <= 0.01, (r.energy_j, true_energy)
        assert r.baseline_power_w == pytest.approx(3.3 * 0.010, rel=0.01)
        idle_energy = 3.3 * 0.010 * t.width_s
        assert abs(r.energy_net_j - (true_energy - idle_energy)) <= 0.01 * true_energy
        assert r.power_w == pytest.approx(r.energy_j / r.latency_s)
        assert r.cross_check_ok is True and r.timing_source == "cycle-counter"
        assert abs(r.latency_by_source_s["pa-trigger"] - t.width_s) <= TINT


def test_pulse_edges_are_located_on_the_boards_time_axis(board_factory) -> None:
    """The record's window start must be where the board's edge really was (within a sample),
    not just have the right length."""
    board = board_factory(width_s=2e-3)
    results, truth = _run(board, n=2)
    for r, t in zip(results, truth, strict=True):
        assert r.latency_by_source_s["cycle-counter"] == pytest.approx(t.width_s)
        assert abs(r.latency_by_source_s["pa-trigger"] - t.width_s) <= TINT


def test_bus_trigger_finds_the_pulse_after_the_trigger(board_factory) -> None:
    board = board_factory(width_s=1.5e-3)
    results, truth = _run(board, n=2, trigger_pin=None)
    for r, t in zip(results, truth, strict=True):
        assert abs(r.latency_s - t.width_s) <= TINT
        assert abs(r.energy_j / (3.3 * t.charge_c) - 1) <= 0.01


class _Skewed(TimingSource):
    """A second timer that reads 5 % long (a mis-set scope time base, say)."""

    name = "skewed"

    def read(self, evidence: Evidence) -> PulseTiming:
        assert evidence.counted_s is not None
        return PulseTiming(self.name, evidence.counted_s * 1.05)


def test_cross_check_flags_a_disagreeing_source(board_factory) -> None:
    board = board_factory(width_s=1e-3)
    results, _ = _run(board, n=2, sources=[PaTriggerTiming(), _Skewed()])
    for r in results:
        assert r.cross_check_ok is False
        assert r.cross_check_deviation == pytest.approx(0.05, abs=0.005)
        assert r.latency_by_source_s["skewed"] == pytest.approx(1.05e-3)


def test_pa_trigger_alone_times_the_pulse(board_factory) -> None:
    board = board_factory(width_s=1e-3, profile=[(0.5, 0.050), (0.5, 0.030)])
    results, truth = _run(board, n=2, sources=[PaTriggerTiming()], noise_a=50e-6)
    for r, t in zip(results, truth, strict=True):
        assert r.timing_source == "pa-trigger" and r.cross_check_ok is None
        assert abs(r.latency_s - t.width_s) <= TINT
        assert abs(r.energy_j / (3.3 * t.charge_c) - 1) <= 0.01


class _Broken(TimingSource):
    name = "cycle-counter"

    def read(self, evidence: Evidence) -> PulseTiming:
        raise ValueError("counter wrapped")


def test_a_failing_source_is_left_out_and_the_other_still_times(board_factory) -> None:
    board = board_factory(width_s=1e-3)
    results, truth = _run(board, n=1, sources=[_Broken(), PaTriggerTiming()])
    assert results[0].timing_source == "pa-trigger" and results[0].cross_check_ok is None
    assert abs(results[0].latency_s - truth[0].width_s) <= TINT


def test_no_source_left_is_an_error(board_factory) -> None:
    from harness.instruments.errors import InstrumentError

    board = board_factory(width_s=1e-3)
    with pytest.raises(InstrumentError, match="no timing source could time the pulse"):
        _run(board, n=1, sources=[_Broken()])
