"""Persistent flash of one simulated board: a bytearray mirrored to
``$HARNESS_SIM_STATE/<board>/flash.bin`` (default ``~/.cache/harness/sim``), written atomically,
so an image programmed by one process (e.g. the ``pyocd flash`` CLI) boots in another.

A campaign holds its run folder's lock and, with it, its own flash state
(:func:`scoped_to_run`): ``<state dir>/runs/<hash of the run folder>/<board>/flash.bin``. Two
campaigns on one machine then never boot each other's images or reset each other's boards."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ERASED = 0xFF
_scope: Path | None = None
_scope_lock = threading.Lock()


def base_state_dir() -> Path:
    env = os.environ.get("HARNESS_SIM_STATE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "sim"


def state_dir() -> Path:
    """Where boards without an explicit folder keep their flash: the current run's scope, if any."""
    return _scope if _scope is not None else base_state_dir()


def run_state_dir(run_dir: Path) -> Path:
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
    return base_state_dir() / "runs" / digest


@contextmanager
def scoped_to_run(run_dir: Path) -> Iterator[Path]:
    """Flash state private to ``run_dir`` for the duration (one campaign per process)."""
    global _scope
    folder = run_state_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "owner.txt").write_text(f"{run_dir.resolve()}\n")
    with _scope_lock:
        previous, _scope = _scope, folder
    try:
        yield folder
    finally:
        with _scope_lock:
            _scope = previous


class FlashStore:
    def __init__(self, board: str, base: int, size: int, directory: Path | None = None, persist: bool = True):
        self.board, self.base, self.size = board, base, size
        self.data = bytearray([ERASED]) * size
        self.persist = persist
        self._directory = directory
        self._stamp: tuple[int, int] | None = None
        # save() and changed_on_disk() exclude each other: between the rename and the stamp
        # update our own save looked like another process's, and the running board rebooted
        # into it behind the debugger that had just halted it (see docs/sim-debug.md).
        self._stamp_lock = threading.Lock()
        self.dirty = False
        if persist:
            self.reload()

    @property
    def path(self) -> Path:
        """Asked each time: a board created before a campaign started follows the run's scope."""
        return (self._directory or state_dir()) / self.board / "flash.bin"

    def contains(self, address: int, length: int = 1) -> bool:
        return self.base <= address and address + length <= self.base + self.size

    def write(self, address: int, data: bytes) -> None:
        if not self.contains(address, len(data)):
            raise ValueError(
                f"{self.board}: {len(data)} bytes at {address:#010x} fall outside flash "
                f"{self.base:#010x}-{self.base + self.size - 1:#010x}"
            )
        off = address - self.base
        self.data[off : off + len(data)] = data
        self.dirty = True

    def erase(self, address: int, length: int) -> None:
        self.write(address, bytes([ERASED]) * length)

    def erase_all(self) -> None:
        self.data[:] = bytes([ERASED]) * self.size
        self.dirty = True

    def read(self, address: int, length: int) -> bytes:
        off = address - self.base
        return bytes(self.data[off : off + length])

    def _disk_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def save(self) -> None:
        """Write the image atomically (temp file + rename); no-op without persistence."""
        with self._stamp_lock:
            self.dirty = False
            if not self.persist:
                return
            path = self.path
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".flash-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(self.data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._stamp = self._disk_stamp()

    def changed_on_disk(self) -> bool:
        """True when another process rewrote the image since we last loaded or saved it."""
        with self._stamp_lock:
            return self.persist and self._disk_stamp() != self._stamp

    def reload(self) -> bool:
        """Load the image from disk if present (returns whether one was loaded)."""
        stamp = self._disk_stamp()
        self._stamp = stamp
        if stamp is None:
            return False
        blob = self.path.read_bytes()[: self.size]
        self.data[: len(blob)] = blob
        if len(blob) < self.size:
            self.data[len(blob) :] = bytes([ERASED]) * (self.size - len(blob))
        return True
