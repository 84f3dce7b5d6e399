"""A sampled supply waveform as an integrating digitizer delivers it.

Sample ``i`` is the *mean* over the interval ``[t_start_s + i*interval_s, t_start_s +
(i+1)*interval_s)`` (the N6705A integrates between samples); times are seconds relative to the
start of the sample in which the trigger fell (so the trigger itself lies somewhere inside
``[0, interval_s)``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Waveform:
    current_a: np.ndarray
    voltage_v: np.ndarray  # measured, or the programmed voltage repeated when not measured
    interval_s: float
    t_start_s: float  # start of sample 0 relative to the trigger sample's start
    voltage_measured: bool = True
    # level of the digital input wired to the benchmark GPIO, one per sample (monitors that
    # sample their digital inputs with the current: PPK2 logic port, Joulescope GPI)
    digital: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.current_a) != len(self.voltage_v):
            raise ValueError("current and voltage records differ in length")
        if self.digital is not None and len(self.digital) != len(self.current_a):
            raise ValueError("digital-input and current records differ in length")

    def __len__(self) -> int:
        return len(self.current_a)

    @property
    def edges_s(self) -> np.ndarray:
        """Sample boundaries: len+1 times."""
        return self.t_start_s + self.interval_s * np.arange(len(self) + 1)

    @property
    def t_end_s(self) -> float:
        return self.t_start_s + self.interval_s * len(self)

    @property
    def power_w(self) -> np.ndarray:
        return self.current_a * self.voltage_v

    def index_of(self, t_s: float) -> int:
        """Index of the sample containing time ``t_s`` (clipped)."""
        i = int(np.floor((t_s - self.t_start_s) / self.interval_s + 1e-9))
        return min(max(i, 0), len(self) - 1)
