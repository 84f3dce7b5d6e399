"""Content-addressed firmware cache: one folder per key holding the build outputs. A key covers
everything that can change the image (model sources, board, options, toolchain, templates)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

_COMPLETE = ".complete"


def default_cache_dir() -> Path:
    """$HARNESS_CACHE_DIR, else ~/.cache/harness/firmware."""
    env = os.environ.get("HARNESS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "harness" / "firmware"


def cache_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _place(src: Path, dst: Path) -> None:
    """Hard-link when possible (same filesystem, no copy), else copy."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class BuildCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> Path | None:
        """The entry folder if a complete build is stored under ``key``."""
        folder = self.entry(key)
        return folder if (folder / _COMPLETE).exists() else None

    def store(self, key: str, files: list[Path]) -> Path:
        """Copy ``files`` into the entry; concurrent writers of the same key are harmless
        (the first complete rename wins)."""
        folder = self.entry(key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists() and not (folder / _COMPLETE).exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by an interrupted store
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=folder.parent))
        for f in files:
            shutil.copy2(f, tmp / f.name)
        (tmp / _COMPLETE).write_text("")
        try:
            tmp.rename(folder)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    def restore(self, folder: Path, out_dir: Path) -> list[Path]:
        """Place the entry's files into ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        placed = []
        for f in sorted(folder.iterdir()):
            if f.name == _COMPLETE:
                continue
            _place(f, out_dir / f.name)
            placed.append(out_dir / f.name)
        return placed
