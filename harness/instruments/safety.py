"""Keep Ctrl-C from interrupting the few instrument writes that make the bench safe."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.instruments.protocols import PowerMonitor

LOG = logging.getLogger(__name__)
OFF_ATTEMPTS = 3  # output-off tries, each after the first over a fresh connection
EMERGENCY_OFF_TIMEOUT_S = 15.0  # per output, when the process is about to end itself

# Outputs switched on and not yet off: what an emergency stop switches off (harness.stop).
_live_outputs: dict[object, Callable[[], str | None]] = {}
_live_lock = threading.Lock()


def output_on(key: object, switch_off: Callable[[], str | None]) -> None:
    """Register a powered output; ``switch_off`` returns None when confirmed off, else a message."""
    with _live_lock:
        _live_outputs[key] = switch_off


def output_off(key: object) -> None:
    with _live_lock:
        _live_outputs.pop(key, None)


def emergency_off() -> list[str]:
    """Switch every registered output off, all at once on threads of their own with one
    timeout (a hung connection must not hold up the others); returns what was not confirmed."""
    with _live_lock:
        pending = list(_live_outputs.values())
    results: list[list[str | None]] = [[] for _ in pending]

    def run(off: Callable[[], str | None], out: list[str | None]) -> None:
        out.append(off())

    threads = [threading.Thread(target=run, args=(off, out), daemon=True, name="emergency-off")
               for off, out in zip(pending, results, strict=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + EMERGENCY_OFF_TIMEOUT_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    problems = [r[0] for r in results if r and r[0] is not None]
    silent = sum(1 for r in results if not r)
    if silent:
        problems.append(f"{silent} output-off(s) did not answer within {EMERGENCY_OFF_TIMEOUT_S:.0f} s; "
                        "switch them off at the instrument")
    return problems


@contextmanager
def defer_sigint() -> Iterator[None]:
    """Hold SIGINT while the block runs (e.g. 'output off'), then re-raise KeyboardInterrupt.

    Outside the main thread signals cannot be handled, so the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def _hold(signum: int, frame: object) -> None:
        pending.append(signum)

    previous = signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            raise KeyboardInterrupt


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit inside the block, so ``finally`` and ``__exit__`` (output off)
    run when the harness is killed politely (CI timeouts, systemd, docker stop)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def switch_off_confirmed(monitor: PowerMonitor, what: str) -> str | None:
    """Switch the monitor's output off and confirm it (the driver reads the state back); when
    that fails, retry over a fresh connection. Returns None when confirmed, else the message to
    report loudly (it is also logged as an ERROR); never raises."""
    last: Exception | None = None
    for attempt in range(OFF_ATTEMPTS):
        try:
            if attempt:
                monitor.reconnect(restore=False)
            monitor.output_off()
            LOG.info("%s output off (confirmed)", what)
            return None
        except Exception as exc:
            last = exc
            LOG.warning("%s output off not confirmed (attempt %d/%d): %s", what, attempt + 1, OFF_ATTEMPTS, exc)
    msg = (f"{what} output could NOT be confirmed off after {OFF_ATTEMPTS} attempts ({last}); "
           "switch it off at the instrument")
    LOG.error(msg)
    return msg
