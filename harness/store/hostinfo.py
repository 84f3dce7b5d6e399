"""What a run records about where it ran: harness version, git commit of the harness source and
the host, so a table in a paper can be traced back to the code and machine that produced it."""

from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path

from harness import __version__


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state(cwd: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the repository holding the harness source; (None, None) outside git."""
    where = cwd or Path(__file__).resolve().parents[2]
    commit = _git(["rev-parse", "HEAD"], where)
    if not commit:
        return None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], where)
    return commit, (bool(status) if status is not None else None)


def host_info() -> dict[str, str]:
    return {
        "harness_version": __version__,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python_version": platform.python_version(),
    }
