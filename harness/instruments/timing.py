"""Timing sources behind one interface: each tells, per inference, when the GPIO pulse started
and ended (or only how long it lasted), so latency and the energy window can come from any of
them and two of them can be cross-checked.

Per inference the procedure calls ``arm()`` before triggering the inference and
``read(evidence)`` after it; ``evidence`` carries what the harness already has (the power
analyzer's record, the firmware's cycle count) for sources that derive timing from it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from harness.instruments.edges import find_pulse
from harness.instruments.waveform import Waveform


@dataclass(frozen=True)
class Evidence:
    waveform: Waveform | None = None
    trigger_index: int | None = None  # sample of the waveform holding the trigger
    cycles: int | None = None  # firmware cycle count of this inference
    counted_s: float | None = None  # the DUT's own conversion (counter rate, overhead removed)


@dataclass(frozen=True)
class PulseTiming:
    """One pulse. start/end are on the waveform's time axis when the source knows them."""

    source: str
    duration_s: float
    start_s: float | None = None
    end_s: float | None = None

    @property
    def has_window(self) -> bool:
        return self.start_s is not None and self.end_s is not None


class TimingSource(ABC):
    name: str = "timing"
    needs_monitor: bool = False  # reads the power monitor's record (absent on a latency-only rig)

    def arm(self) -> None:  # noqa: B027 - most sources need no arming
        """Prepare to time the next pulse (e.g. single-shot a scope)."""

    @abstractmethod
    def read(self, evidence: Evidence) -> PulseTiming:
        """Timing of the pulse since ``arm()``."""

    def close(self) -> None:  # noqa: B027
        """Release the instrument."""


class PaTriggerTiming(TimingSource):
    """Start at the power analyzer's pin trigger, end at the step of the current waveform back to
    the baseline; both refined inside their sample from the integrating-ADC sample values."""

    name = "pa-trigger"
    needs_monitor = True

    def read(self, evidence: Evidence) -> PulseTiming:
        if evidence.waveform is None or evidence.trigger_index is None:
            raise ValueError("pa-trigger timing needs the power analyzer record")
        pulse = find_pulse(evidence.waveform, evidence.trigger_index)
        return PulseTiming(self.name, pulse.duration_s, pulse.start_s, pulse.end_s)


class CycleCounterTiming(TimingSource):
    """Cycles counted by the firmware (DWT CYCCNT or SysTick) divided by the core clock."""

    name = "cycle-counter"

    def __init__(self, clock_hz: float):
        if clock_hz <= 0:
            raise ValueError("clock_hz must be positive")
        self.clock_hz = clock_hz

    def read(self, evidence: Evidence) -> PulseTiming:
        if evidence.counted_s is not None:
            return PulseTiming(self.name, evidence.counted_s)
        if evidence.cycles is None:
            raise ValueError("cycle-counter timing needs the firmware's cycle count (it may have wrapped)")
        return PulseTiming(self.name, evidence.cycles / self.clock_hz)


class DigitalInputTiming(TimingSource):
    """The benchmark GPIO as the power monitor's own digital input sampled it with the current
    (PPK2 logic port, Joulescope GPI): start at the first high sample, end at the first low one
    after it; exact to one sample interval."""

    name = "digital-input"
    needs_monitor = True

    def read(self, evidence: Evidence) -> PulseTiming:
        wf = evidence.waveform
        if wf is None or wf.digital is None:
            raise ValueError("digital-input timing needs a power monitor that samples its digital inputs")
        level = np.asarray(wf.digital).astype(bool)
        start = evidence.trigger_index if evidence.trigger_index is not None else 0
        highs = np.flatnonzero(level[start:])
        if not len(highs):
            raise ValueError("the digital input never went high in the record")
        k0 = start + int(highs[0])
        lows = np.flatnonzero(~level[k0:])
        if not len(lows):
            raise ValueError("the digital input was still high at the end of the record")
        k1 = k0 + int(lows[0])
        edges = wf.edges_s
        return PulseTiming(self.name, float(edges[k1] - edges[k0]), float(edges[k0]), float(edges[k1]))


@dataclass(frozen=True)
class CrossCheck:
    deviation: float | None  # max relative deviation from the primary source
    ok: bool | None
    worst: str | None = None


def cross_check(timings: list[PulseTiming], tolerance: float) -> CrossCheck:
    """Compare every source's duration with the first (primary) one."""
    if len(timings) < 2:
        return CrossCheck(None, None)
    ref = timings[0].duration_s
    devs = {t.source: abs(t.duration_s - ref) / ref if ref > 0 else float("inf") for t in timings[1:]}
    worst = max(devs, key=lambda k: devs[k])
    return CrossCheck(devs[worst], devs[worst] <= tolerance, worst)
