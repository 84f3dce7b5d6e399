"""A scripted signal source standing in for a board: GPIO pulses of known width and current on a
SignalBus, with the exact ground truth of each pulse. Used to test and benchmark the
measurement chain without the emulator.

Simulated time follows the wall clock (times ``speed``) while idle, as the emulated board does
while it waits for the host; an inference is appended instantly (idle gap, rising edge, active
current profile, falling edge). It implements the InferenceRunner protocol (``infer``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from harness.sim.signals import SignalBus


@dataclass(frozen=True)
class TruePulse:
    start_s: float
    end_s: float
    charge_c: float  # integral of current over [start, end)

    @property
    def width_s(self) -> float:
        return self.end_s - self.start_s


@dataclass
class InferResult:
    cycles: list[int]
    outputs: list[object] = field(default_factory=list)


class PulseBoard:
    """``profile`` is a list of (fraction of width, current) steps making up each pulse."""

    def __init__(self, *, supply_v: float = 3.3, idle_a: float = 0.010, active_a: float = 0.030,
                 width_s: float = 1e-3, clock_hz: float = 100e6, speed: float = 1.0, tick_s: float = 0.001,
                 profile: list[tuple[float, float]] | None = None, bus: SignalBus | None = None):
        self.bus = bus or SignalBus(supply_v, idle_a)
        self.idle_a, self.width_s, self.clock_hz, self.speed, self.tick_s = idle_a, width_s, clock_hz, speed, tick_s
        self.profile = profile or [(1.0, active_a)]
        if abs(sum(f for f, _ in self.profile) - 1.0) > 1e-9:
            raise ValueError("profile fractions must add up to 1")
        self.truth: list[TruePulse] = []
        self.fail_after: int | None = None  # raise in infer() after this many pulses (tests)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_wall = time.monotonic()

    # -- clock -----------------------------------------------------------------------------
    def start(self) -> PulseBoard:
        self._last_wall = time.monotonic()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="pulse-board-clock")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def __enter__(self) -> PulseBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _advance_idle(self) -> None:
        wall = time.monotonic()
        dt = (wall - self._last_wall) * self.speed
        self._last_wall = wall
        if dt > 0:
            now = self.bus.now_s
            self.bus.add_segment(now, now + dt, self.idle_a)

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self._lock:
                self._advance_idle()

    # -- InferenceRunner -------------------------------------------------------------------
    def infer(self, n: int, warmup: int = 0, gap_us: int = 20000, width_s: float | None = None) -> InferResult:
        width = width_s or self.width_s
        cycles = []
        with self._lock:
            self._advance_idle()
            for k in range(warmup + n):
                if self.fail_after is not None and len(self.truth) >= self.fail_after:
                    raise RuntimeError("simulated DUT link failure")
                t = self.bus.now_s
                self.bus.add_segment(t, t + gap_us * 1e-6, self.idle_a)
                t += gap_us * 1e-6
                self.bus.add_edge(t, 1, round(t * self.clock_hz))
                start, charge = t, 0.0
                for frac, amps in self.profile:
                    self.bus.add_segment(t, t + frac * width, amps)
                    charge += frac * width * amps
                    t += frac * width
                self.bus.add_edge(t, 0, round(t * self.clock_hz))
                self.truth.append(TruePulse(start, t, charge))
                if k >= warmup:
                    cycles.append(round(width * self.clock_hz))
        return InferResult(cycles)
