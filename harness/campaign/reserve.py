"""Board reservations on a rig PC: an OS file lock per (rig, board), held by the process that
drives the board (a station actor) for as long as it lives, so two campaigns never drive one DUT
at once. The lock dies with its process (crash, killed node): nothing stale to clean up."""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class BoardReserved(HarnessError):
    """The board is being driven by another campaign."""


def reservations_dir() -> Path:
    env = os.environ.get("HARNESS_RESERVATIONS")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "reservations"


class BoardReservation:
    def __init__(self, rig: str, board: str, holder: dict[str, Any]):
        self.rig, self.board = rig, board
        # names come from validated config files; squashed anyway, so a lock never leaves its folder
        self.path = reservations_dir() / _SAFE.sub("_", rig) / f"{_SAFE.sub('_', board)}.lock"
        self.holder = {**holder, "host": socket.gethostname(), "pid": os.getpid(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._fd: int | None = None

    def acquire(self) -> BoardReservation:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BoardReserved(f"board {self.board} on rig {self.rig} is reserved by {self.describe_holder()}") from None
        self._fd = fd
        self._write({**self.holder, "state": "held"})
        return self

    def _write(self, content: dict[str, Any]) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(content).encode(), 0)
        os.fsync(self._fd)

    def take_orphan(self) -> dict[str, Any] | None:
        """If the board's last holder died without releasing it (its lock is free, the file still
        says 'held'), take the lock and return that holder: the caller makes the board safe, then
        ``release()``s it. None if the board is held by a live process or was released cleanly."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            last = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
        except ValueError:
            last = {}
        if last.get("state") != "held":
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            return None
        self._fd = fd
        return dict(last)

    def describe_holder(self) -> str:
        try:
            h = json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            h = {}
        return describe(h)

    def unlock_keep_state(self) -> None:
        """Let go of the lock and leave the file as it is (a later round tries again)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def release(self, note: str = "released") -> None:
        if self._fd is not None:
            self._write({**self.holder, "state": "released", "note": note})
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def describe(h: dict[str, Any]) -> str:
    """Who holds a board, for the message a second campaign gets."""
    if not h:
        return "another process"
    return (f"campaign {h.get('campaign', '?')!r} (run folder {h.get('run_dir', '?')}, driver "
            f"{h.get('driver', '?')}; station pid {h.get('pid', '?')} on {h.get('host', '?')} since "
            f"{h.get('since', '?')})")
