"""Power model of a simulated board: turns executed/slept cycles into current segments on the
SignalBus. While executing, the current over each flushed span is

    active_current_a + mem_current_a * (load/store fraction) + power.fpu_a * (FPU fraction)
    + power.mul_a * (multiply/MAC fraction) + power.flash_read_a * (flash data reads per instruction)

(fractions of the span's instructions; coefficients fitted per board to seed 002's per-row power,
docs/sim-accuracy.md); sleep/park = idle_current_a. Spans are flushed at every GPIO edge, so the
energy inside a benchmark window is exact for the model, and at least once per emulation slice.
The class counts come from the block counter (block granular inside a span)."""

from __future__ import annotations

from typing import Protocol

from harness.config.board import SimSettings
from harness.sim.signals import SignalBus


class ClassCounts(Protocol):
    fp: int
    mul: int
    data_reads: int


class PowerModel:
    def __init__(self, sim: SimSettings, clock_hz: int, bus: SignalBus, counts: ClassCounts | None = None):
        self.sim, self.clock_hz, self.bus, self.counts = sim, clock_hz, bus, counts
        self._cycle = self._insns = self._mem = 0
        self._classes = (0, 0, 0)

    def _class_totals(self) -> tuple[int, int, int]:
        c = self.counts
        return (c.fp, c.mul, c.data_reads) if c is not None else (0, 0, 0)

    def reset_marks(self, cycles: int, insns: int, mem: int) -> None:
        self._cycle, self._insns, self._mem = cycles, insns, mem
        self._classes = self._class_totals()

    def current(self, insns: int, mem: int, fp: int = 0, mul: int = 0, flash_reads: int = 0) -> float:
        """Active current for a span with these instruction counts."""
        if insns <= 0:
            return self.sim.active_current_a
        p = self.sim.power
        return (
            self.sim.active_current_a
            + (self.sim.mem_current_a * mem + p.fpu_a * fp + p.mul_a * mul + p.flash_read_a * flash_reads) / insns
        )

    def active(self, cycles: int, insns: int, mem: int) -> None:
        """Executed from the last mark up to these counters."""
        classes = self._class_totals()
        if cycles > self._cycle:
            d = [max(0, a - b) for a, b in zip(classes, self._classes, strict=True)]
            current = self.current(insns - self._insns, mem - self._mem, *d)
            self.bus.add_segment(self._cycle / self.clock_hz, cycles / self.clock_hz, current)
        self._cycle, self._insns, self._mem = max(cycles, self._cycle), insns, mem
        self._classes = classes

    def idle(self, n_cycles: int) -> None:
        """Slept/parked for ``n_cycles`` after the last mark."""
        if n_cycles <= 0:
            return
        end = self._cycle + n_cycles
        self.bus.add_segment(self._cycle / self.clock_hz, end / self.clock_hz, self.sim.idle_current_a)
        self._cycle = end
