"""One `harness run` per run folder: an OS file lock (``<run folder>/.run.lock``) held for the
whole run, with the holder's pid, host and start time written into it for the message the
second run gets.

The lock is ``flock`` (POSIX) or ``msvcrt.locking`` (Windows): the operating system drops it
when the holder dies, however it dies, so a SIGKILLed run never blocks the next one. The
recorded pid and host tell a stale record (dead pid on this host) from a live holder, and
name a holder on another host that shares the folder (network file systems)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import HarnessError

LOG = logging.getLogger(__name__)
LOCK_NAME = ".run.lock"


class RunLocked(HarnessError):
    """Another `harness run` holds this run folder."""

    exit_code = 4


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def read_holder(run_dir: Path) -> dict[str, Any] | None:
    """What the last holder recorded (pid, host, started, argv), or None."""
    try:
        text = (run_dir / LOCK_NAME).read_text(encoding="utf-8", errors="replace")
        data = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "another process (no details recorded)"
    return (f"`{holder.get('command', 'harness run')}` (pid {holder.get('pid')} on host {holder.get('host')}, "
            f"since {holder.get('started')})")


def _rewrite(fd: int, record: dict[str, Any]) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, (json.dumps(record) + "\n").encode())
    os.fsync(fd)


class RunLock:
    """``with RunLock(run_dir):`` - raises RunLocked when another run holds the folder."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self._fd: int | None = None
        self.took_over: dict[str, Any] | None = None  # a stale record found when acquiring

    def check_free(self) -> None:
        """Raise RunLocked if another run holds the folder; takes nothing."""
        if self.path.exists():
            fd = self._lock_or_raise()
            os.close(fd)

    def _lock_or_raise(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            holder = read_holder(self.run_dir)
            host = socket.gethostname()
            if holder and holder.get("host") == host and not _pid_alive(int(holder.get("pid") or 0)):
                why = (f"its recorded holder (pid {holder.get('pid')}) is gone but the lock is still held, "
                       "likely by a child process it started; end that process")
            else:
                why = f"it is in use by {describe(holder)}"
            raise RunLocked(
                f"run folder {self.run_dir} is locked: {why}. Only one `harness run` may use a run folder at a "
                f"time; wait for it to finish, or use --new / --run-dir for a separate folder")
        return fd

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = self._lock_or_raise()
        previous = read_holder(self.run_dir)
        if previous and previous.get("pid") and not previous.get("released"):
            self.took_over = previous  # the OS dropped its lock: it died without releasing
            alive = previous.get("host") == socket.gethostname() and _pid_alive(int(previous["pid"]))
            LOG.warning("run folder %s: taking over the stale lock of %s%s", self.run_dir, describe(previous),
                        "" if not alive else " (pid alive but not holding the lock)")
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "command": " ".join(["harness", *sys.argv[1:]])[:300] if sys.argv else "harness run"}
        self._fd = fd
        try:
            _rewrite(fd, record)
        except OSError as exc:  # e.g. a full disk: the lock is held, only its record is missing
            LOG.warning("run folder %s: could not record the lock holder: %s", self.run_dir, exc)
        return self

    def describe_previous(self) -> str:
        return describe(self.took_over)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:  # leave a record that says the run ended cleanly (not a stale lock)
            record = read_holder(self.run_dir) or {}
            record["released"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            _rewrite(fd, record)
        except OSError:
            pass
        finally:
            os.close(fd)  # closing drops the OS lock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
