"""A process-wide stop request: Ctrl-C or SIGTERM reaches every thread of a run, not only the main one.

Python delivers a signal to the main thread alone, as an exception at its next bytecode. The
prepare worker (training, building) and the station threads never see it. A run that waited for
them at exit kept going for as long as the training took. And once in about 70 tries the
KeyboardInterrupt was lost in library code the main thread was running (where, was not found),
and the run went on to the end. So the campaign's signal handlers also set this flag. Workers check it at
safe points (every training step, between stages, between configurations and repetitions), and
there they raise ``StopRequested``. It is a ``KeyboardInterrupt``, so the ``finally`` blocks that
switch outputs off run as for Ctrl-C, and ``except Exception`` never hides it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()


class StopRequested(KeyboardInterrupt):
    """Raised at a safe point after Ctrl-C or SIGTERM asked the run to stop."""


def request() -> None:
    """Ask every thread of the run to stop at its next safe point."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def raise_if_requested() -> None:
    """A safe point: raise ``StopRequested`` if a stop was asked for."""
    if _requested.is_set():
        raise StopRequested


@contextmanager
def scope() -> Iterator[None]:
    """One run: a stop asked for by an earlier run in this process does not stop this one."""
    _requested.clear()
    try:
        yield
    finally:
        _requested.clear()
