"""Energy integration and edge location on synthetic integrating-ADC records (no instrument)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.instruments.edges import NoPulse, find_pulse
from harness.instruments.energy import baseline_power, measure_window, summarize, window_energy
from harness.instruments.waveform import Waveform

TINT = 20e-6


def _record(start: float, end: float, idle: float = 0.01, active: float = 0.03, n: int = 100,
            pre: int = 20, volts: float = 3.0) -> Waveform:
    """What an integrating ADC reports for a rectangular pulse [start, end) (times relative to
    the trigger sample's start, sample 0 of the record at -pre*TINT)."""
    edges = -pre * TINT + TINT * np.arange(n + 1)
    overlap = np.clip(np.minimum(edges[1:], end) - np.maximum(edges[:-1], start), 0, None)
    current = idle + (active - idle) * overlap / TINT
    return Waveform(current, np.full(n, volts), TINT, -pre * TINT)


@pytest.mark.parametrize("start, end", [(3e-6, 1003e-6), (0.0, 500e-6), (19.9e-6, 260.1e-6), (7e-6, 47e-6)])
def test_edge_aware_energy_is_exact_for_a_rectangular_pulse(start: float, end: float) -> None:
    wf = _record(start, end)
    exact = 3.0 * 0.03 * (end - start)
    assert window_energy(wf, start, end, outside_power_w=3.0 * 0.01) == pytest.approx(exact, rel=1e-9)


def test_uniform_split_is_biased_at_the_edges() -> None:
    start, end = 15e-6, 1015e-6  # both edges 3/4 into their samples
    wf = _record(start, end)
    exact = 3.0 * 0.03 * (end - start)
    uniform = window_energy(wf, start, end, outside_power_w=None)
    # the start sample is 1/4 active: proportional sharing puts too little energy inside
    assert uniform < exact
    assert abs(uniform / exact - 1) > 1e-3


def test_window_inside_one_sample_and_outside_the_record() -> None:
    wf = _record(0.0, 1e-3)
    assert window_energy(wf, 100e-6, 105e-6, None) == pytest.approx(3.0 * 0.03 * 5e-6)
    assert window_energy(wf, 1e-3, 1e-3, None) == 0.0
    with pytest.raises(ValueError, match="outside the record"):
        window_energy(wf, -1.0, 1e-3, None)


def test_baseline_excludes_the_window_and_its_neighbours() -> None:
    wf = _record(5e-6, 1e-3)
    assert baseline_power(wf, 5e-6, 1e-3) == pytest.approx(3.0 * 0.01)


def test_measure_window_gross_and_net() -> None:
    wf = _record(5e-6, 1.005e-3)
    m = measure_window(wf, 5e-6, 1.005e-3, index=3, timing_source="test")
    assert m.latency_s == pytest.approx(1e-3)
    assert m.energy_j == pytest.approx(3.0 * 0.03 * 1e-3)
    assert m.power_w == pytest.approx(0.09)
    assert m.baseline_power_w == pytest.approx(0.03)
    assert m.energy_net_j == pytest.approx(3.0 * 0.02 * 1e-3)
    assert m.sample_interval_s == TINT and m.index == 3 and m.to_dict()["timing_source"] == "test"
    assert m.to_dict()["units"]["energy_j"] == "J" and m.to_dict()["units"]["sample_interval_s"] == "s"


@pytest.mark.parametrize("start, end", [(3e-6, 1003e-6), (0.0, 40.0e-6 * 10), (19.99e-6, 333.3e-6)])
def test_find_pulse_locates_edges_inside_samples(start: float, end: float) -> None:
    wf = _record(start, end)
    p = find_pulse(wf, trigger_index=20)
    assert p.start_s == pytest.approx(start, abs=1e-9)
    assert p.end_s == pytest.approx(end, abs=1e-9)
    assert p.baseline_a == pytest.approx(0.01) and p.active_a == pytest.approx(0.03)


def test_find_pulse_with_a_low_current_phase() -> None:
    """A phase drawing well above idle but far below the peak is still part of the inference."""
    edges = -20 * TINT + TINT * np.arange(101)
    cur = np.full(100, 0.01)
    t = (edges[:-1] + edges[1:]) / 2
    cur[(t > 0) & (t < 400e-6)] = 0.06
    cur[(t > 400e-6) & (t < 1000e-6)] = 0.025
    wf = Waveform(cur, np.full(100, 3.0), TINT, -20 * TINT)
    p = find_pulse(wf, 20)
    assert p.end_s == pytest.approx(1000e-6, abs=TINT)


def test_find_pulse_refuses_flat_records_and_short_windows() -> None:
    flat = Waveform(np.full(50, 0.01), np.full(50, 3.0), TINT, -10 * TINT)
    with pytest.raises(NoPulse, match="no current step"):
        find_pulse(flat, 10)
    with pytest.raises(NoPulse, match="window too short"):
        find_pulse(_record(0.0, 10e-3), 20)


def test_summarize_mean_and_sample_std() -> None:
    ms = [measure_window(_record(0.0, w), 0.0, w, index=i, timing_source="t") for i, w in enumerate((1e-3, 1.2e-3))]
    s = summarize(ms)
    assert s["latency_s"][0] == pytest.approx(1.1e-3)
    assert s["latency_s"][1] == pytest.approx(np.std([1e-3, 1.2e-3], ddof=1))
