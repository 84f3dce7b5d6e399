"""The data logger (ELOG) of one simulated channel: continuous records of mean/min/max current
and voltage per period, kept in a FIFO of limited depth that the host must drain.

Records are computed lazily from the SignalBus history when the host fetches them; a record
exists once simulated time has passed its end. If more than ``capacity`` records are pending
at a fetch, the oldest are lost and an error is queued (the real FIFO overflows the same way;
its exact error code is [check])."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.sim.n6705a.acquisition import Sampler
from harness.sim.signals import SignalBus

ADC_INTERVAL_S = 20.48e-6  # min/max are taken over these sub-samples of a period


@dataclass
class ElogSettings:
    period_s: float = 0.1
    curr: bool = True
    curr_minmax: bool = False
    volt: bool = False
    volt_minmax: bool = False
    source: str = "BUS"  # BUS, IMM, PIN<n>


@dataclass
class Elog:
    settings: ElogSettings
    sampler: Sampler
    fifo_s: float
    pin_bus: SignalBus | None = None
    t_arm: float = 0.0
    t_start: float | None = None
    consumed: int = 0
    lost: int = 0
    running: bool = True

    @property
    def capacity(self) -> int:
        return max(1, int(self.fifo_s / self.settings.period_s))

    def trigger_now(self, now_s: float) -> None:
        if self.t_start is None:
            self.t_start = now_s

    def _resolve_start(self) -> None:
        if self.t_start is None and self.settings.source.startswith("PIN") and self.pin_bus is not None:
            for edge in self.pin_bus.edges(self.t_arm):
                if edge.level == 1:
                    self.t_start = edge.time_s
                    break

    def fields_per_record(self) -> int:
        s = self.settings
        return (s.curr + 2 * s.curr_minmax) + (s.volt + 2 * s.volt_minmax)

    def fetch(self, max_records: int, now_s: float) -> tuple[np.ndarray, int]:
        """Pop up to ``max_records`` finished records (flattened); returns (values, records lost)."""
        self._resolve_start()
        if self.t_start is None or not self.running:
            return np.zeros(0), 0
        per = self.settings.period_s
        available = int((now_s - self.t_start) / per + 1e-9) - self.consumed
        lost = 0
        if available > self.capacity:
            lost = available - self.capacity
            self.consumed += lost
            self.lost += lost
            available = self.capacity
        n = max(0, min(available, max_records))
        rows = [self._record(self.consumed + j) for j in range(n)]
        self.consumed += n
        flat = np.concatenate(rows) if rows else np.zeros(0)
        return flat, lost

    def _record(self, j: int) -> np.ndarray:
        assert self.t_start is not None
        per = self.settings.period_s
        n_sub = max(1, round(per / ADC_INTERVAL_S))
        sub = per / n_sub
        current, voltage = self.sampler.sample(self.t_start + j * per, sub, n_sub)
        s = self.settings
        out: list[float] = []
        if s.curr:
            out.append(float(current.mean()))
        if s.curr_minmax:
            out += [float(current.min()), float(current.max())]
        if s.volt:
            out.append(float(voltage.mean()))
        if s.volt_minmax:
            out += [float(voltage.min()), float(voltage.max())]
        return np.asarray(out)
