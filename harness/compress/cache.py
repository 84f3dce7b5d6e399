"""On-disk cache of trained and pruned torch models, keyed by a hash of everything that shaped them.

Why: a campaign compresses one model under several settings and numeric types; the baseline is
trained once and each pruning run (shared by float32 and uint8 variants, and by accuracy targets
walking the same candidate rates) happens once.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_GUARD = threading.Lock()
_LOCKS: dict[str, threading.Lock] = {}


def _lock(name: str) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(name, threading.Lock())


def key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class ModelCache:
    def __init__(self, folder: Path | None):
        self.folder = folder

    def _path(self, kind: str, k: str) -> Path | None:
        return self.folder / f"{kind}-{k}.pt" if self.folder else None

    def load(self, kind: str, k: str) -> dict[str, Any] | None:
        import torch

        p = self._path(kind, k)
        if p is None or not p.exists():
            return None
        try:
            return torch.load(p, weights_only=False, map_location="cpu")
        except Exception:  # a torn or stale entry is recomputed, never trusted
            return None

    def save(self, kind: str, k: str, entry: dict[str, Any]) -> None:
        import torch

        p = self._path(kind, k)
        if p is None:
            return
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        torch.save(entry, tmp)
        tmp.replace(p)

    def get_or_compute(self, kind: str, k: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Cached entry, else ``compute()`` once per key even when runner threads ask concurrently
        (separate processes may both compute; the atomic rename keeps the file whole)."""
        hit = self.load(kind, k)
        if hit is not None:
            return hit
        with _lock(f"{self.folder}/{kind}-{k}"):
            hit = self.load(kind, k)
            if hit is None:
                hit = compute()
                self.save(kind, k, hit)
        return hit
