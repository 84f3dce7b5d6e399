"""Which stations of a rig share an instrument's acquisition trigger, and the lock each holds
while it talks to its power monitor.

An N6705A mainframe arms, triggers and sweeps its digitizer for all its outputs together (one
acquisition trigger system per mainframe, see docs/cluster.md), so two stations on one mainframe
cannot be measured at the same instant: they share one lock, held for every measurement window
and every supply change. Flashing, output checks over serial and builds run outside it and
overlap. A PPK2 or Joulescope measures one board each: its station's lock is its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.config.rig import RigConfig

# monitor kinds whose outputs share one acquisition trigger system per instrument
SHARED_TRIGGER_KINDS = frozenset({"n6705a"})


class MonitorLock:
    """A re-entrant lock that also keeps when each board held it (``windows``: board, start,
    end in time.monotonic()), so a run can show its measurement windows never overlapped."""

    def __init__(self, instrument: str, keep: int = 10_000):
        self.instrument = instrument
        self._lock = threading.RLock()
        self._depth = threading.local()
        self._keep = keep
        self.windows: list[tuple[str, float, float]] = []
        self.waited_s = 0.0  # time stations spent waiting for the instrument

    @contextmanager
    def held(self, board: str) -> Iterator[None]:
        t_ask = time.monotonic()
        with self._lock:
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            t0 = time.monotonic()
            if depth == 0:
                self.waited_s += t0 - t_ask
            try:
                yield
            finally:
                self._depth.n = depth
                if depth == 0 and len(self.windows) < self._keep:
                    self.windows.append((board, t0, time.monotonic()))


class BoardLock:
    """The face a Station sees: ``with st.monitor_lock:`` holds its instrument for this board."""

    def __init__(self, shared: MonitorLock, board: str):
        self.shared, self.board = shared, board
        self._ctx: list[Any] = []

    def __enter__(self) -> BoardLock:
        ctx = self.shared.held(self.board)
        ctx.__enter__()
        self._ctx.append(ctx)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ctx.pop().__exit__(*exc)


def monitor_locks(rig: RigConfig, boards: list[str]) -> dict[str, BoardLock]:
    """One lock per instrument: every board of a shared-trigger mainframe gets the same one."""
    pa = rig.power_analyzer
    shared: dict[str, MonitorLock] = {}
    out: dict[str, BoardLock] = {}
    for b in boards:
        key = f"{pa.kind}:{pa.resource}" if pa.kind in SHARED_TRIGGER_KINDS else f"{pa.kind}:{b}"
        lock = shared.setdefault(key, MonitorLock(key))
        out[b] = BoardLock(lock, b)
    return out


def overlapping(windows: list[tuple[str, float, float]]) -> list[tuple[tuple[str, float, float], ...]]:
    """Pairs of windows of different boards that overlap in time (should be none)."""
    ws = sorted(windows, key=lambda w: w[1])
    return [(a, b) for i, a in enumerate(ws) for b in ws[i + 1:] if b[1] < a[2] and a[0] != b[0]]
