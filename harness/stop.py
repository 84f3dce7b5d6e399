"""A process-wide stop request: Ctrl-C or SIGTERM reaches every thread of a run, not only the main one.

Python delivers a signal to the main thread alone, as an exception at its next bytecode. The
prepare worker (training, building) and the station threads never see it. A run that waited for
them at exit kept going for as long as the training took. And once in about 70 tries the
KeyboardInterrupt was lost in library code the main thread was running (one way: Python 3.11
wraps it in RuntimeError when it strikes a class body's ``__set_name__``, see
``caused_by_interrupt``), and the run went on to the end. So the campaign's signal handlers also set this flag. Workers check it at
safe points (every training step, between stages, between configurations and repetitions), and
there they raise ``StopRequested``. It is a ``KeyboardInterrupt``, so the ``finally`` blocks that
switch outputs off run as for Ctrl-C, and ``except Exception`` never hides it."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

GRACE_S = 30.0  # how long a requested stop may take before the process ends itself
_requested = threading.Event()
_escalation: threading.Thread | None = None
_escalation_lock = threading.Lock()
_disarmed = threading.Event()


class StopRequested(KeyboardInterrupt):
    """Raised at a safe point after Ctrl-C or SIGTERM asked the run to stop."""


def request() -> None:
    """Ask every thread of the run to stop at its next safe point."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether a Ctrl-C / SIGTERM interrupt is in ``exc``'s cause or context chain. Why: Python
    3.11 turns one raised inside ``__set_name__`` (a dataclass defined while a module is imported
    lazily, as the simulated analyzer's is when the rig starts) into a RuntimeError, which an
    ``except Exception`` then takes for an ordinary failure (seen in CI: exit 1 with a traceback)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def reraise_interrupt(exc: BaseException) -> None:
    """In an ``except Exception`` block: an exception that stands for an interrupt becomes the
    interrupt again (``StopRequested``), so the run unwinds instead of recording a failure."""
    if caused_by_interrupt(exc) or _requested.is_set():
        raise StopRequested from exc


def raise_if_requested() -> None:
    """A safe point: raise ``StopRequested`` if a stop was asked for."""
    if _requested.is_set():
        raise StopRequested


def escalate_after(grace_s: float, stacks_file: Path | None, exit_code: int,
                   outputs_off: Callable[[], list[str]]) -> None:
    """Start (once per process) a watchdog for a requested stop: if the process still runs after
    ``grace_s``, write every thread's stack to ``stacks_file`` (what did not stop, for the bug
    report), switch every registered output off (``outputs_off``), say so on stderr and end the
    process with ``exit_code``. Why: a stop that never completes (an interrupt lost in library
    code, a thread blocked where no safe point is) must not keep a bench powered and a CI job
    waiting; everything measured is already committed to the store, and --resume continues."""
    global _escalation
    with _escalation_lock:
        if _escalation is not None:
            return
        _disarmed.clear()
        _escalation = threading.Thread(target=_escalate, args=(grace_s, stacks_file, exit_code, outputs_off),
                                       name="stop-watchdog", daemon=True)
        _escalation.start()


def disarm() -> None:
    """The stop completed (the run unwound): the watchdog, if armed, ends without acting."""
    global _escalation
    with _escalation_lock:
        _disarmed.set()
        _escalation = None


def _escalate(grace_s: float, stacks_file: Path | None, exit_code: int, outputs_off: Callable[[], list[str]]) -> None:
    if _disarmed.wait(grace_s):
        return
    where = "stderr"
    try:
        if stacks_file is not None:
            with open(stacks_file, "w") as fh:
                faulthandler.dump_traceback(file=fh, all_threads=True)
            where = str(stacks_file)
        else:
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    except OSError:
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    unconfirmed: list[str] = []
    with contextlib.suppress(Exception):
        unconfirmed = outputs_off()
    lines = [f"interrupted: the stop did not complete within {grace_s:.0f} s; ending the process "
             f"(thread stacks: {where}; what was stored is kept; a run continues with --resume)"]
    lines += [f"SAFETY: {m}" for m in unconfirmed]
    with contextlib.suppress(Exception):
        sys.stderr.write("\n".join(lines) + "\n")
        sys.stderr.flush()
    os._exit(exit_code)


@contextmanager
def scope() -> Iterator[None]:
    """One run: a stop asked for by an earlier run in this process does not stop this one."""
    _requested.clear()
    try:
        yield
    finally:
        _requested.clear()
