"""Blessed baselines: a run (or measure result) frozen under a name, with its provenance, as one
text file ``<baselines dir>/<NAME>.json``. Text, so that a team commits it next to its firmware,
reviews a re-blessed baseline as a diff in the pull request that changed the numbers, and CI
compares against the file of the target branch. The folder is ``--baselines-dir``, else
``$HARNESS_BASELINES``, else ``./baselines`` (see docs/ci.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.report.rundata import ReportError

FORMAT = "harness-baseline/1"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ENV = "HARNESS_BASELINES"


def default_dir() -> Path:
    env = os.environ.get(ENV)
    return Path(env) if env else Path("baselines")


def _check_name(name: str) -> str:
    if not NAME_RE.match(name) or name.endswith(".json"):
        raise ReportError(f"baseline name {name!r}: use letters, digits, '_', '-', '.' (no path, no .json suffix)")
    return name


def _git_head(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def provenance_of(side: Any) -> dict[str, Any]:
    """What a baseline must say about where its numbers came from."""
    prov = dict(side.provenance)
    sessions = prov.pop("sessions", None) or []
    return {
        **prov,
        "source_kind": side.kind,
        "source": side.source,
        "simulated": side.simulated,
        "harness_git_commit": sorted({s.get("git_commit") for s in sessions if s.get("git_commit")}),
        "saved_from_git_commit": _git_head(Path.cwd()),
        "firmware": {c.identity.label: {"sha256": c.firmware_sha256, "build_id": c.build_id,
                                        "build_options": c.build_options}
                     for c in side.configs.values()},
    }


class BaselineStore:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_dir()

    def path(self, name: str) -> Path:
        return self.root / f"{_check_name(name)}.json"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json") if NAME_RE.match(p.stem)) if self.root.is_dir() else []

    def exists(self, name: str) -> bool:
        return bool(NAME_RE.match(name)) and (self.root / f"{name}.json").is_file()

    def save(self, name: str, side: Any, *, force: bool = False, note: str = "") -> Path:
        dest = self.path(name)
        if dest.exists() and not force:
            raise ReportError(f"baseline {name!r} exists at {dest}; pass --force to replace it")
        doc = {"format": FORMAT, "name": name, "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
               "note": note, "provenance": provenance_of(side), "side": side.to_dict()}
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".json", dir=self.root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1, sort_keys=True, allow_nan=False, default=str)
                fh.write("\n")
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest

    def document(self, name: str) -> dict[str, Any]:
        path = self.path(name)
        if not path.is_file():
            raise ReportError(f"no baseline {name!r} in {self.root} (stored: {', '.join(self.names()) or 'none'})")
        return read_document(path)

    def load(self, name: str) -> Any:
        return side_of(self.document(name), str(self.path(name)))

    def load_file(self, path: Path) -> Any:
        return side_of(read_document(path), str(path))


def read_document(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not a readable baseline ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ReportError(f"{path}: not a harness baseline (format {FORMAT!r} expected)")
    return doc


def is_baseline_file(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:2048]
    except (OSError, UnicodeDecodeError):
        return False
    return f'"{FORMAT}"' in head


def side_of(doc: dict[str, Any], source: str) -> Any:
    from harness.report.sides import Side

    side = Side.from_dict(doc["side"], kind="baseline", source=source)
    side.label = f"baseline {doc['name']}"
    return side
