"""The digitizer of one simulated output channel: arm, wait for a trigger on the board's time
axis, wait for simulated time to pass the window end, then sample.

Sampling model (an integrating ADC): the sample grid starts at the arm time ``t_arm`` and runs
continuously; sample ``i`` of the returned record covers ``[t0 + i*TINT, t0 + (i+1)*TINT)`` and
holds the *mean* current over that interval (``SignalBus.mean_current``), where
``t0 = t_arm + (k_trig + offset) * TINT`` and ``k_trig`` is the grid sample in which the
trigger fell. So the trigger time is known to the host only to within one sample interval, as
on the real instrument; the host refines edges from the current waveform.

A trigger edge is accepted only once the pre-trigger part of the record has been filled
(``t_arm - offset*TINT`` for a negative offset) [check on a real N6705A]."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from harness.sim.signals import SignalBus


class AcqState(Enum):
    IDLE = "idle"
    WAITING = "waiting for trigger"
    ACQUIRING = "acquiring"
    DONE = "done"


@dataclass
class Sampler:
    """What the channel looks like electrically while the digitizer samples it."""

    bus: SignalBus | None
    volt_set: Callable[[], float]
    output_on: Callable[[], bool]
    drop_ohm: float = 0.0
    noise_a: float = 0.0
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    def sample(self, t0: float, tint: float, points: int) -> tuple[np.ndarray, np.ndarray]:
        starts = t0 + tint * np.arange(points)
        if self.bus is None or not self.output_on():
            return np.zeros(points), np.zeros(points)
        current = self.bus.mean_current(starts, starts + tint)
        if self.noise_a:
            current = current + self.rng.normal(0.0, self.noise_a, points)
        voltage = self.volt_set() - self.drop_ohm * current
        return current, voltage


@dataclass
class TriggerSpec:
    source: str  # "BUS", "IMM" or "PIN<n>"
    pin_bus: SignalBus | None = None
    rising: bool = True


class Acquisition:
    """One INIT:ACQ ... FETC cycle; runs a worker thread that never blocks the SCPI parser."""

    def __init__(self, cond: threading.Condition, sampler: Sampler, trigger: TriggerSpec,
                 tint: float, points: int, offset: int):
        self.cond = cond
        self.sampler = sampler
        self.trigger = trigger
        self.tint = tint
        self.points = points
        self.offset = offset
        clock = trigger.pin_bus or sampler.bus
        self.clock = clock
        self.t_arm = clock.now_s if clock else 0.0
        self.t_trigger: float | None = None
        self.state = AcqState.WAITING
        self.current = np.zeros(0)
        self.voltage = np.zeros(0)
        self._aborted = threading.Event()
        self._bus_trigger = threading.Event()
        self._bus_trigger_s = self.t_arm
        if trigger.source == "IMM":
            self._bus_trigger.set()
        self._thread = threading.Thread(target=self._run, daemon=True, name="sim-n6705a-acq")
        self._thread.start()

    # -- control ---------------------------------------------------------------------------
    @property
    def bus_triggered(self) -> bool:
        return self._bus_trigger.is_set()

    def bus_trigger(self) -> None:
        """A software trigger happens at the board's time when the command arrives."""
        if self.trigger.source == "BUS" and not self._bus_trigger.is_set():
            self._bus_trigger_s = self.clock.now_s if self.clock else 0.0
            self._bus_trigger.set()

    @property
    def aborted(self) -> bool:
        return self._aborted.is_set()

    def abort(self) -> None:
        """Stop waiting; wakes the worker and any FETC blocked on this acquisition."""
        self._aborted.set()
        self._bus_trigger.set()
        if self.clock is not None:
            with self.clock.changed:
                self.clock.changed.notify_all()
        with self.cond:
            self.cond.notify_all()

    # -- worker ----------------------------------------------------------------------------
    def _wait_trigger(self) -> float | None:
        ready = self.t_arm + max(0, -self.offset) * self.tint
        if self.trigger.source.startswith("PIN"):
            bus = self.trigger.pin_bus
            if bus is None:
                self._aborted.wait()
                return None
            level = 1 if self.trigger.rising else 0
            with bus.changed:
                while not self._aborted.is_set():
                    for edge in bus.edges(ready):
                        if edge.level == level:
                            return edge.time_s
                    bus.changed.wait(0.5)
            return None
        self._bus_trigger.wait()
        if self._aborted.is_set():
            return None
        now = self._bus_trigger_s
        if self.clock is not None and now < ready:  # wait for the pre-trigger fill
            self._wait_time(ready)
            now = max(now, ready)
        return now

    def _wait_time(self, t: float) -> bool:
        if self.clock is None:
            return True
        while not self._aborted.is_set():
            if self.clock.wait_until(t, timeout=0.2):
                return True
        return False

    def _run(self) -> None:
        t_trig = self._wait_trigger()
        if t_trig is None:
            return
        with self.cond:
            self.t_trigger = t_trig
            self.state = AcqState.ACQUIRING
        k_trig = math.floor((t_trig - self.t_arm) / self.tint + 1e-9)
        t0 = self.t_arm + (k_trig + self.offset) * self.tint
        if not self._wait_time(t0 + self.points * self.tint):
            return
        current, voltage = self.sampler.sample(t0, self.tint, self.points)
        with self.cond:
            self.current, self.voltage = current, voltage
            self.state = AcqState.DONE
            self.cond.notify_all()
