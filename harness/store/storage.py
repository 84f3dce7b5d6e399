"""Running out of disk or writing into a read-only folder: turned into one message that names
the path and says what to do, instead of ``sqlite3.OperationalError`` or ``OSError [Errno 30]``.

Why a separate error class: the campaign runner records an ordinary failure per configuration
and goes on, but a full or read-only disk fails every configuration the same way, and marking
them "failed" would make ``--resume`` skip them. A StorageError ends the run instead; what was
committed stays committed (SQLite rolls back the transaction in flight), so ``--resume``
continues once there is space."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from harness.errors import HarnessError

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
# SQLite primary result codes (sqlite3.h)
SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 8, 10, 13, 14


class StorageError(HarnessError):
    """The disk is full, or a folder cannot be written."""

    exit_code = 5

    def __init__(self, path: str | Path, problem: str, advice: str):
        self.path = str(path)
        super().__init__(f"{path}: {problem}. {advice}")


FULL_ADVICE = ("Everything committed so far is kept. Free space on that file system (or give another folder "
               "with --run-dir), then continue with `harness run <campaign> --resume`.")
READONLY_ADVICE = ("Make the folder writable, or choose another one (--run-dir, or output_dir in the campaign "
                   "file); a run already started continues there with `harness run <campaign> --resume`.")


def from_os_error(exc: OSError, path: str | Path | None = None) -> StorageError | None:
    """A StorageError for a full / read-only disk, None for any other OSError."""
    where = path or exc.filename or "(unknown path)"
    if exc.errno in FULL_ERRNOS:
        return StorageError(where, f"no space left to write ({exc.strerror or exc})", FULL_ADVICE)
    if exc.errno in READONLY_ERRNOS:
        return StorageError(where, f"cannot write here ({exc.strerror or exc})", READONLY_ADVICE)
    return None


def from_sqlite_error(exc: sqlite3.Error, path: str | Path) -> StorageError | None:
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc)
    if code == SQLITE_FULL or "disk is full" in text:
        return StorageError(path, f"the disk is full ({text})", FULL_ADVICE)
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN) or "readonly" in text or "unable to open" in text:
        return StorageError(path, f"cannot write the results store ({text})", READONLY_ADVICE)
    if code == SQLITE_IOERR or "disk I/O error" in text:
        return StorageError(path, f"the disk failed a write ({text}); it may be full or failing", FULL_ADVICE)
    return None


def from_tool_output(text: str, path: str | Path) -> StorageError | None:
    """A compiler or linker that failed because the disk is full says so only in its output."""
    for errnos, advice in ((FULL_ERRNOS, FULL_ADVICE), (READONLY_ERRNOS - {errno.EACCES, errno.EPERM}, READONLY_ADVICE)):
        for code in sorted(errnos):
            if os.strerror(code) in text:
                return StorageError(path, f"a tool could not write its output ({os.strerror(code)})", advice)
    return None


def storage_error(exc: BaseException, path: str | Path | None = None) -> StorageError | None:
    """Classify any exception (also one chained inside another) as a storage problem or not;
    with ``path``, also a failed tool whose message reports a full or read-only disk."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, StorageError):
            return cur
        if isinstance(cur, OSError):
            err = from_os_error(cur, path)
            if err is not None:
                return err
        if isinstance(cur, sqlite3.Error) and path is not None:
            err = from_sqlite_error(cur, path)
            if err is not None:
                return err
        cur = cur.__cause__ or cur.__context__
    if path is not None:
        return from_tool_output(str(exc), path)
    return None


def folder_unwritable(folder: str | Path, min_free_bytes: int = 256 * 1024) -> StorageError | None:
    """A StorageError when the file system holding ``folder`` is full or read-only right now.

    Why: a full disk also shows up second-hand (a truncated file read back later, a tool's
    failure); when a configuration fails while its run folder cannot take more data, the disk
    is the likely cause, and recording the configuration as failed would make --resume skip it."""
    import shutil

    folder = Path(folder)
    try:
        st = os.statvfs(folder)
        free = shutil.disk_usage(folder).free
    except (OSError, AttributeError):  # gone, or no statvfs (Windows): nothing to conclude
        return None
    if st.f_flag & os.ST_RDONLY:
        return StorageError(folder, "cannot write here (Read-only file system)", READONLY_ADVICE)
    if free < min_free_bytes:
        return StorageError(folder, f"the disk is full ({free} bytes free)", FULL_ADVICE)
    return None
