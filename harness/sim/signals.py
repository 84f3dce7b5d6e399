"""Ground-truth signals of one simulated board, shared between the emulator (producer) and the
simulated instruments (consumers): GPIO edges and the supply-current waveform, both on the
board's simulated time axis (seconds since the board's power-on)."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Edge:
    time_s: float
    level: int  # 0 or 1
    cycle: int


class SignalBus:
    """Thread-safe record of GPIO edges and a piecewise-constant current waveform.

    The emulator appends current segments in time order (``add_segment``) and edges
    (``add_edge``); instruments read them. ``now_s`` is the latest simulated time covered.
    Readers wait on ``changed`` (a Condition) instead of polling.
    """

    def __init__(self, supply_v: float, idle_current_a: float):
        self.supply_v = supply_v
        self.idle_current_a = idle_current_a
        self.changed = threading.Condition()
        self._seg_start: list[float] = [0.0]
        self._seg_current: list[float] = [idle_current_a]
        self._edges: list[Edge] = []
        self.now_s = 0.0
        self.powered = True
        # Latest simulated time a reader is waiting for: a board parked at idle (nothing to
        # simulate) may jump ahead to it instead of letting it pass in wall-clock time.
        self.requested_s = 0.0

    # -- producer side -------------------------------------------------------------------
    def add_segment(self, start_s: float, end_s: float, current_a: float) -> None:
        """Current is ``current_a`` on [start_s, end_s). Segments must arrive in time order."""
        with self.changed:
            if end_s <= start_s:
                return
            if start_s < self._seg_start[-1]:
                start_s = self._seg_start[-1]
            if self._seg_current[-1] == current_a and self._seg_start[-1] <= start_s:
                pass  # extend the previous segment
            else:
                self._seg_start.append(start_s)
                self._seg_current.append(current_a)
            self.now_s = max(self.now_s, end_s)
            self.changed.notify_all()

    def add_edge(self, time_s: float, level: int, cycle: int) -> None:
        with self.changed:
            self._edges.append(Edge(time_s, level, cycle))
            self.changed.notify_all()

    # -- consumer side -------------------------------------------------------------------
    def edges(self, since_s: float = 0.0) -> list[Edge]:
        with self.changed:
            i = bisect.bisect_left([e.time_s for e in self._edges], since_s)
            return self._edges[i:]

    def current_at(self, times_s: np.ndarray) -> np.ndarray:
        """Instantaneous current at each time (beyond ``now_s`` the last level holds)."""
        with self.changed:
            starts = np.asarray(self._seg_start)
            currents = np.asarray(self._seg_current)
        idx = np.searchsorted(starts, times_s, side="right") - 1
        return currents[np.clip(idx, 0, len(currents) - 1)]

    def mean_current(self, t0_s: np.ndarray, t1_s: np.ndarray) -> np.ndarray:
        """Exact mean current over each interval [t0, t1) (what an integrating ADC sees)."""
        with self.changed:
            starts = np.asarray(self._seg_start)
            currents = np.asarray(self._seg_current)
        # cumulative charge at each segment start
        widths = np.diff(starts)
        charge = np.concatenate([[0.0], np.cumsum(widths * currents[:-1])])

        def q(t: np.ndarray) -> np.ndarray:
            i = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(starts) - 1)
            return charge[i] + (t - starts[i]) * currents[i]

        t0 = np.asarray(t0_s, dtype=float)
        t1 = np.asarray(t1_s, dtype=float)
        return (q(t1) - q(t0)) / np.maximum(t1 - t0, 1e-30)

    def wait_until(self, time_s: float, timeout: float) -> bool:
        """Block until simulated time reaches ``time_s`` (True) or ``timeout`` wall seconds pass."""
        with self.changed:
            if time_s > self.requested_s:
                self.requested_s = time_s
            return self.changed.wait_for(lambda: self.now_s >= time_s, timeout=timeout)
