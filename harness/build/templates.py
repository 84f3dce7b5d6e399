"""Where the firmware templates live, and a content hash of them for the build cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.config.loader import repo_root


def templates_root() -> Path:
    return repo_root() / "firmware_templates"


def template_dir(kind: str) -> Path:
    """``common``, ``bare-metal`` or ``mbed``."""
    return templates_root() / kind


def tree_hash(*folders: Path) -> str:
    """Hash of every file under the folders (names and contents)."""
    h = hashlib.sha256()
    for folder in folders:
        for f in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(str(f.relative_to(folder)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def build_logic_hash(kind: str) -> str:
    """Templates of ``kind`` + the common ones + this package's code: a change to any of them
    must invalidate cached firmware."""
    return tree_hash(template_dir("common"), template_dir(kind), Path(__file__).parent)
