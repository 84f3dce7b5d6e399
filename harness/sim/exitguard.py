"""Whether the process is exiting, and a lock that keeps debugger-side calls into Unicorn from
overlapping the exit (harness.sim.board's atexit hook sets the flag under it, then the binding's
own atexit hook closes every engine)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from harness.sim.errors import SimError

_LOCK = threading.RLock()  # re-entered: a reset may read registers
_exiting = False


def exiting() -> bool:
    return _exiting


def mark_exiting() -> None:
    """Called once at exit: waits for an engine call in flight, then refuses new ones."""
    global _exiting
    with _LOCK:
        _exiting = True


@contextlib.contextmanager
def engine_access(name: str) -> Iterator[None]:
    """Around a call into a board's Unicorn from a thread other than its emulation thread (a
    debugger, a pyOCD flash still programming when a signal came): none may run once the
    process exits, when the engine is closed, nor overlap the exit."""
    with _LOCK:
        if _exiting:
            raise SimError(f"{name}: the process is exiting; the emulated core is no longer reachable")
        yield
