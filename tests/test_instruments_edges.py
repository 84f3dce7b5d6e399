"""Pulse location on a triggered current record (harness/instruments/edges.py) and the wrapped-lap
check (harness/instruments/measure.py), on synthetic records shaped like the ones sim-pico gave
for a float ResNet: firmware work just before the GPIO rises, and a low-current phase inside the
inference."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from harness.instruments.edges import NoPulse, find_pulse, robust_noise
from harness.instruments.errors import InstrumentError
from harness.instruments.measure import _check_wrapped_lap
from harness.instruments.waveform import Waveform

TINT = 20.48e-6


def _record(levels: list[tuple[float, float]], pre_s: float, seed: int = 0) -> tuple[Waveform, int]:
    """Piecewise-constant current (duration s, level A) with 0.1 mA noise; the trigger (GPIO
    rise) is ``pre_s`` after the start."""
    rng = np.random.default_rng(seed)
    cur = np.concatenate([np.full(round(d / TINT), a) for d, a in levels]) + rng.normal(0, 1e-4, sum(
        round(d / TINT) for d, _ in levels))
    trig = round(pre_s / TINT)
    return Waveform(cur, np.full(len(cur), 5.0), TINT, -trig * TINT), trig


def test_work_before_the_gpio_does_not_end_the_pulse_at_a_low_current_phase() -> None:
    idle, busy, mac = 13.0e-3, 14.9e-3, 16.2e-3
    wf, trig = _record([(9.3e-3, idle), (0.7e-3, busy),  # 10 ms before the trigger, the last 0.7 ms busy
                        (20e-3, mac), (10e-3, busy), (120e-3, mac),  # 150 ms inference, one low phase
                        (20e-3, idle)], pre_s=10e-3)
    pulse = find_pulse(wf, trig)
    assert pulse.duration_s == pytest.approx(150e-3, abs=3 * TINT)
    assert pulse.baseline_a == pytest.approx(idle, abs=2e-4)


def test_robust_noise_ignores_a_short_step_but_sees_the_noise() -> None:
    rng = np.random.default_rng(1)
    quiet = rng.normal(13e-3, 1e-4, 1000)
    stepped = np.concatenate([quiet[:930], quiet[930:] + 1.9e-3])
    assert robust_noise(quiet) == pytest.approx(1e-4, rel=0.15)
    assert robust_noise(stepped) == pytest.approx(1e-4, rel=0.25)
    assert float(np.std(stepped)) > 4e-4  # what the old estimate took for noise


def test_no_sample_above_the_threshold_is_a_no_pulse_not_an_index_error() -> None:
    pre = np.tile([12e-3, 14e-3], 50)  # MAD noise 1.48 mA: the 6-sigma threshold is above the peak
    post = np.concatenate([np.full(5, 13e-3 + 8e-3), np.full(50, 13e-3)])
    cur = np.concatenate([pre, post])
    wf = Waveform(cur, np.full(len(cur), 5.0), TINT, -len(pre) * TINT)
    with pytest.raises(NoPulse, match="above the threshold"):
        find_pulse(wf, len(pre))


def test_a_wrapped_lap_shorter_than_the_counter_period_is_refused() -> None:
    laps = SimpleNamespace(counter_hz=133_000_000)
    with pytest.raises(InstrumentError, match=r"timed 23\.000 ms.*at least 126\.1"):
        _check_wrapped_lap(23e-3, laps, 133e6, 0)
    _check_wrapped_lap(151e-3, laps, 133e6, 0)  # longer than one period: plausible
