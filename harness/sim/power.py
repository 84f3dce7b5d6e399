"""Power model of a simulated board: turns executed/slept cycles into current segments on the
SignalBus. Active current = active_current_a + mem_current_a * (load/store fraction) over each
flushed span; sleep/park = idle_current_a. Spans are flushed at every GPIO edge, so the energy
inside a benchmark window is exact for the model, and at least once per emulation slice."""

from __future__ import annotations

from harness.config.board import SimSettings
from harness.sim.signals import SignalBus


class PowerModel:
    def __init__(self, sim: SimSettings, clock_hz: int, bus: SignalBus):
        self.sim, self.clock_hz, self.bus = sim, clock_hz, bus
        self._cycle = self._insns = self._mem = 0

    def reset_marks(self, cycles: int, insns: int, mem: int) -> None:
        self._cycle, self._insns, self._mem = cycles, insns, mem

    def active(self, cycles: int, insns: int, mem: int) -> None:
        """Executed from the last mark up to these counters."""
        if cycles > self._cycle:
            di = insns - self._insns
            frac = (mem - self._mem) / di if di > 0 else 0.0
            current = self.sim.active_current_a + self.sim.mem_current_a * frac
            self.bus.add_segment(self._cycle / self.clock_hz, cycles / self.clock_hz, current)
        self._cycle, self._insns, self._mem = max(cycles, self._cycle), insns, mem

    def idle(self, n_cycles: int) -> None:
        """Slept/parked for ``n_cycles`` after the last mark."""
        if n_cycles <= 0:
            return
        end = self._cycle + n_cycles
        self.bus.add_segment(self._cycle / self.clock_hz, end / self.clock_hz, self.sim.idle_current_a)
        self._cycle = end
