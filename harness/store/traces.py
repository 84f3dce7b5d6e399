"""Raw waveforms (current, voltage, GPIO) of one measurement, kept next to the database as one
.npz file per repetition so a number in a table can always be re-derived from its samples.

Files are written atomically (temporary file in the same folder, fsync, rename, fsync of the
folder): after a crash a trace either exists completely under its final name or not at all, and
the database row that points to it is written only after the rename."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

META_KEY = "__meta__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def trace_relpath(config_id: str, repetition: int) -> Path:
    """Relative location of a trace: ``traces/<config id with '/' as '__'>/rep-0003.npz``."""
    safe = _UNSAFE.sub("_", config_id.replace("/", "__"))
    return Path("traces") / safe / f"rep-{repetition:04d}.npz"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> Path:
    """Write arrays (+ JSON metadata) to ``path`` so that readers never see a partial file."""
    if META_KEY in arrays:
        raise ValueError(f"array name {META_KEY!r} is reserved for metadata")
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    payload[META_KEY] = np.array(json.dumps(meta or {}, sort_keys=True, default=str))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **payload)  # type: ignore[arg-type]  # numpy stub: **kwds clash with allow_pickle: bool
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def read_trace(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays and metadata of a trace written by :func:`write_npz_atomic`."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != META_KEY}
        meta = json.loads(str(data[META_KEY])) if META_KEY in data.files else {}
    return arrays, meta
