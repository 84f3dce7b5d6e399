"""Locate arm-none-eabi-* and run it with a timeout, turning failures into StageErrors that
name the board, the command and the compiler's first error lines."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.errors import StageError

PREFIX = "arm-none-eabi-"


class ToolFailed(StageError):
    """A toolchain command exited non-zero; ``output`` keeps its full text."""

    def __init__(self, message: str, output: str):
        self.output = output
        super().__init__(message)


@dataclass(frozen=True)
class Toolchain:
    gcc: str
    objcopy: str
    size: str
    version: str  # first line of `gcc --version`


@lru_cache(maxsize=4)
def find_toolchain(bin_dir: str | None = None) -> Toolchain:
    """``bin_dir`` (or $HARNESS_ARM_TOOLCHAIN) is searched before $PATH."""
    search = bin_dir or os.environ.get("HARNESS_ARM_TOOLCHAIN")
    tools = {}
    for tool in ("gcc", "objcopy", "size"):
        found = shutil.which(PREFIX + tool, path=search) if search else None
        found = found or shutil.which(PREFIX + tool)
        if not found:
            raise StageError(
                f"build: {PREFIX}{tool} not found (looked in {search or '$PATH'}); install the Arm GNU "
                "toolchain, e.g. `apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi`"
            )
        tools[tool] = found
    out = subprocess.run([tools["gcc"], "--version"], capture_output=True, text=True, timeout=30)
    version = out.stdout.splitlines()[0].strip() if out.stdout else "unknown"
    return Toolchain(gcc=tools["gcc"], objcopy=tools["objcopy"], size=tools["size"], version=version)


def first_errors(text: str, limit: int = 8) -> str:
    """The compiler's first error lines (or its first lines when none says 'error')."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()]
    return "\n".join((errs or lines)[:limit])


def run_tool(
    cmd: list[str], *, board: str, what: str, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a toolchain command; return its stderr+stdout text or raise StageError."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    except subprocess.TimeoutExpired:
        raise StageError(f"build for board {board}: {what} timed out after {timeout:.0f} s: {shlex.join(cmd)}") from None
    except OSError as exc:
        raise StageError(f"build for board {board}: {what} could not start: {exc}: {shlex.join(cmd)}") from None
    output = (proc.stderr or "") + (proc.stdout or "")
    if proc.returncode != 0:
        raise ToolFailed(
            f"build for board {board}: {what} failed (exit {proc.returncode})\n"
            f"  command: {shlex.join(cmd)}\n{first_errors(output)}",
            output,
        )
    return output
