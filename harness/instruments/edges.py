"""Locate the inference in a triggered supply-current record with sub-sample precision.

The record comes from an integrating digitizer (each sample = mean over its interval), so a
current step at time t inside sample k makes that sample a weighted mix of the two levels:
``I_k = Ib + f*(Ia - Ib)`` where f is the active fraction. Solving for f puts the edge
inside the sample; for the end edge the excess charge of the two samples around the crossing is
used, so the answer does not depend on which side of the threshold the edge sample falls."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.instruments.waveform import Waveform


@dataclass(frozen=True)
class Pulse:
    start_s: float
    end_s: float
    baseline_a: float
    active_a: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


THRESHOLD_FRACTION = 0.25  # of the peak step above idle: low enough for low-current phases


def robust_noise(pre: np.ndarray) -> float:
    """Standard deviation of the idle noise from the median absolute deviation. Why not np.std:
    firmware that works before it raises the GPIO (parsing the command, clearing the arena) puts
    a short step into the pre-trigger record; np.std counted it as noise, and the 6-sigma
    threshold then rose above the inference's own low-current phases, which ended the pulse
    early (a ResNet on sim-pico timed at 23 ms instead of 151 ms)."""
    if len(pre) < 3:
        return 0.0
    return float(1.4826 * np.median(np.abs(pre - np.median(pre))))


class NoPulse(ValueError):
    """The record shows no current step that could be the inference."""


def find_pulse(wf: Waveform, trigger_index: int, min_step_a: float = 0.0) -> Pulse:
    """First current pulse at or after the trigger sample: start and end edges inside their
    samples. Assumes the board draws clearly more than its idle current for the whole
    inference: the threshold is a quarter of the peak step above idle (or 6 sigma of the
    pre-trigger noise, if larger)."""
    cur = wf.current_a
    tint = wf.interval_s
    edges = wf.edges_s
    n = len(cur)
    if not 0 <= trigger_index < n - 1:
        raise NoPulse("trigger outside the record")
    pre = cur[:trigger_index]
    after = cur[trigger_index:]
    baseline = float(np.median(pre)) if len(pre) >= 3 else float(np.median(after[-max(3, len(after) // 5) :]))
    noise = robust_noise(pre)
    peak = float(np.max(after))
    if peak - baseline <= max(min_step_a, 5 * noise, 1e-12):
        raise NoPulse(f"no current step after the trigger (baseline {baseline:.4g} A, peak {peak:.4g} A)")

    def crossings(thr: float) -> tuple[int, int]:
        above = np.flatnonzero(cur[trigger_index:] > thr)
        if not len(above):
            raise NoPulse(f"no sample after the trigger above the threshold {thr:.4g} A (baseline {baseline:.4g} A)")
        k = trigger_index + int(above[0])
        below = cur[k + 1 :] < thr
        both = below[:-1] & below[1:] if len(below) > 1 else below
        hits = np.flatnonzero(both)
        return k, (k + 1 + int(hits[0]) if len(hits) else n)

    k, j = crossings(baseline + max(THRESHOLD_FRACTION * (peak - baseline), 6 * noise))
    active = float(np.median(cur[k + 1 : j - 1])) if j - k > 3 else peak
    if j >= n:
        raise NoPulse("the current never returned to the baseline inside the record (window too short)")

    def level(lo: int, hi: int) -> float:
        return float(np.median(cur[lo:hi])) if hi > lo else active

    # start: active time inside samples k-1 and k, against the level right after them
    step_s = level(k + 1, min(k + 5, j - 1)) - baseline
    excess_s = float(cur[k] - baseline) + (float(cur[k - 1] - baseline) if k >= 1 else 0.0)
    start = edges[k + 1] - float(np.clip(excess_s / step_s, 0.0, 2.0)) * tint if step_s > 0 else edges[k]
    # end: active time inside samples j-1 and j, against the level right before them
    step_e = level(max(k + 1, j - 5), j - 1) - baseline
    excess_e = float(cur[j - 1] - baseline) + float(cur[j] - baseline)
    end = edges[j - 1] + float(np.clip(excess_e / step_e, 0.0, 2.0)) * tint if step_e > 0 else edges[j]
    return Pulse(float(start), float(max(end, start)), baseline, active)
