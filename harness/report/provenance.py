"""The provenance section of a report and its machine-readable manifest: which harness version,
git commit, toolchain, instruments (*IDN?) and firmware images produced the numbers."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.rundata import RunData


def _values(cell: Any) -> list[str]:
    """A stored text field, which may hold a JSON list, as a list of strings."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    text = str(cell)
    if text.startswith("["):
        try:
            return [str(v) for v in json.loads(text)]
        except json.JSONDecodeError:
            pass
    return [text]


def _unique(series: Any) -> list[str]:
    seen: dict[str, None] = {}
    for cell in series:
        for v in _values(cell):
            seen[v] = None
    return list(seen)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v.item() if hasattr(v, "item") else v


SIMULATED_CAPTION = "simulated rig (estimates)"


def _extra(cell: Any) -> dict[str, Any]:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return {}
    try:
        value = json.loads(str(cell))
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def simulated_parts(p: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(boards, instruments) with the ``simulated`` flag each was recorded with at flash time
    (provenance extra: ``board_simulated`` and ``instruments``); one entry per distinct part."""
    boards: dict[str, dict[str, Any]] = {}
    instruments: dict[str, dict[str, Any]] = {}
    if "extra_json" not in getattr(p, "columns", ()):
        return [], []
    for r in p.to_dict("records"):
        extra = _extra(r.get("extra_json"))
        if "board_simulated" in extra and r.get("board"):
            boards[str(r["board"])] = {"name": str(r["board"]), "simulated": bool(extra["board_simulated"])}
        for inst in extra.get("instruments", []) or []:
            key = f"{inst.get('role')}|{inst.get('idn')}"
            instruments[key] = {k: inst.get(k) for k in ("role", "driver", "idn", "simulated")}
    return list(boards.values()), list(instruments.values())


def manifest(run: RunData) -> dict[str, Any]:
    """JSON-ready provenance of a run (written as report/provenance.json)."""
    sessions = [
        {k: _clean(r.get(k)) for k in ("session_id", "started_at", "ended_at", "end_status", "harness_version",
                                       "git_commit", "git_dirty", "hostname", "platform", "python_version")}
        for r in run.runs.to_dict("records")
    ]
    p = run.provenance

    def col(c: str) -> list[str]:
        return _unique(p[c]) if c in p.columns else []

    firmware = [
        {k: _clean(r.get(k)) for k in ("config_id", "board", "firmware_sha256", "build_id", "model_hash", "toolchain",
                                       "probe_id", "recorded_at")}
        for r in p.to_dict("records")
    ]
    boards, instruments = simulated_parts(p)
    return {
        "campaign": run.name,
        # any board or instrument that declared itself simulated: every number is then an estimate
        "simulated": any(b["simulated"] for b in boards) or any(bool(i["simulated"]) for i in instruments),
        "boards": boards,
        "instrument_parts": instruments,
        "campaign_sha256": _clean(run.runs["campaign_sha256"].iloc[-1]) if len(run.runs) else None,
        "sessions": sessions,
        "toolchains": col("toolchain"),
        "instruments": col("instrument_idn"),
        "probes": col("probe_id"),
        "serial_ports": col("serial_port"),
        "timing_sources": col("timing_sources"),
        "firmware": firmware,
    }


def to_markdown(m: dict[str, Any]) -> str:
    lines = ["## Provenance", ""]
    if m.get("simulated"):
        sim = [b["name"] for b in m.get("boards", []) if b["simulated"]]
        sim += [str(i["idn"]) for i in m.get("instrument_parts", []) if i.get("simulated")]
        lines.append(f"- **{SIMULATED_CAPTION}**: simulated parts: " + ", ".join(f"`{s}`" for s in sim))
    lines.append(f"- campaign: `{m['campaign']}` (file sha256 `{m['campaign_sha256'] or 'n/a'}`)")
    for s in m["sessions"]:
        dirty = " (uncommitted changes)" if s.get("git_dirty") else ""
        lines.append(
            f"- session {s['session_id']}: {s['started_at']} -> {s['ended_at'] or 'not ended'}"
            f" ({s['end_status'] or 'unknown'}); harness {s['harness_version']}, git `{s['git_commit'] or 'n/a'}`{dirty};"
            f" host {s['hostname']} ({s['platform']}, Python {s['python_version']})"
        )
    for key, label in (("toolchains", "toolchain"), ("instruments", "instruments (*IDN?)"), ("probes", "probes"),
                       ("serial_ports", "serial ports"), ("timing_sources", "timing sources")):
        vals = m[key]
        lines.append(f"- {label}: " + (", ".join(f"`{v}`" for v in vals) if vals else "not recorded"))
    if m["firmware"]:
        lines += ["", "| configuration | board | firmware sha256 | build id | model hash |", "| :--- | :--- | :--- | :--- | :--- |"]
        for f in m["firmware"]:
            sha = (f["firmware_sha256"] or "n/a")[:16]
            lines.append(f"| {f['config_id']} | {f['board'] or ''} | `{sha}` | {f['build_id'] or ''} |"
                         f" {(f['model_hash'] or '')[:16]} |")
    else:
        lines.append("- firmware: no images recorded")
    return "\n".join(lines) + "\n"
