"""The Python side of an Mbed CE build: the tree's own `tools/` package (mbed_tools, memap), which
its CMake scripts run. Mbed CE would create a venv *inside* the tree and pip-install there; the
harness instead installs a copy of `tools/` into a venv of its own under the cache folder, so the
tree is only ever read (it may be read-only, as in CI)."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import TextIO

from harness.errors import StageError

# Imported by Mbed CE's CMake to check that the *CE* tools (not Arm's PyPI mbed-tools) are present.
CE_TOOLS_MODULE = "mbed_tools.cli.cmsis_mcu_descr"


def tools_root() -> Path:
    """$HARNESS_MBED_TOOLS_DIR, else ~/.cache/harness/mbed-tools."""
    env = os.environ.get("HARNESS_MBED_TOOLS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "harness" / "mbed-tools"


def _tools_digest(tree: Path) -> str:
    """Identity of the tree's tools package: its pyproject and every Python file's name and size."""
    h = hashlib.sha256((tree / "tools" / "pyproject.toml").read_bytes())
    for f in sorted((tree / "tools" / "python").rglob("*.py")):
        h.update(f"{f.relative_to(tree)}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def _has_ce_tools(python: Path) -> bool:
    proc = subprocess.run([str(python), "-c", f"import {CE_TOOLS_MODULE}"], capture_output=True, timeout=120)
    return proc.returncode == 0


def mbed_python(tree: Path, *, log: TextIO | None = None) -> Path:
    """Interpreter that has the tree's Mbed CE tools: the harness's own when it already does,
    else a venv under tools_root() created on first use (one per tools version, under a lock)."""
    if _has_ce_tools(Path(sys.executable)):
        return Path(sys.executable)
    if not (tree / "tools" / "pyproject.toml").is_file():
        raise StageError(f"Mbed CE tree {tree} has no tools/pyproject.toml; is it an Mbed CE checkout?")
    home = tools_root() / _tools_digest(tree)
    python = home / "venv" / "bin" / "python"
    stamp = home / "venv" / ".harness-complete"
    if stamp.exists():
        return python
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return python
        if log is not None:
            print(f"installing the Mbed CE Python tools of {tree} into {home / 'venv'} (once)", file=log, flush=True)
        shutil.rmtree(home / "venv", ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(home / "venv")
        with tempfile.TemporaryDirectory(prefix="mbed-tools-src-", dir=home) as tmp:
            # pip builds in the source folder: install from a copy, never from the tree itself
            src = Path(tmp) / "tools"
            shutil.copytree(tree / "tools", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "venv"))
            proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(src)],
                                  capture_output=True, text=True, timeout=1800)  # fmt: skip
        if proc.returncode != 0 or not _has_ce_tools(python):
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
            raise StageError(
                f"could not install the Mbed CE Python tools from {tree / 'tools'} into {home / 'venv'}:\n{tail}\n"
                "  fix: check network access to the Python package index, or install them yourself with "
                f"`pip install <a writable copy of {tree / 'tools'}>` into the harness's environment"
            )
        stamp.write_text(str(tree) + "\n")
    return python
