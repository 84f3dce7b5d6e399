"""`harness compare` as a function: resolve the sides and the rules, compare, write the outputs.

Rules, weakest first: built-in defaults (harness.report.gate_rules), the current run's campaign
``[gate]`` table, the gate file (``--rules`` or ``./gate.toml``), then the command-line options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.compare import Comparison, compare
from harness.report.gate_rules import (
    GateConfig,
    load_gate_file,
    merge,
    metric_name,
    parse_gate,
    parse_override,
)
from harness.report.rundata import ReportError

GATE_FILE = "gate.toml"


def gate_config(campaign_table: dict[str, Any] | None, rules_file: Path | None, overrides: list[str],
                **cli: Any) -> GateConfig:
    cfg = parse_gate(campaign_table, "campaign [gate] table") if campaign_table else GateConfig()
    path = rules_file if rules_file is not None else (Path(GATE_FILE) if Path(GATE_FILE).is_file() else None)
    if path is not None:
        from_file = load_gate_file(path)
        cfg = merge(cfg, from_file.model_dump(exclude_unset=True))
    top: dict[str, Any] = {k: v for k, v in cli.items() if v is not None}
    try:
        for text in overrides:
            o = parse_override(text)
            if "metrics" in o:
                for m, r in o["metrics"].items():
                    top.setdefault("metrics", {}).setdefault(m, {}).update(r)
            else:
                top.update(o)
        return merge(cfg, top) if top else cfg
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ReportError(f"bad gate rule: {exc}") from None


def run_gate(first: str, second: str | None, *, rules_file: Path | None = None, overrides: list[str] | None = None,
             threshold: float | None = None, alpha: float | None = None, test: str | None = None,
             metrics: list[str] | None = None, allow_missing: bool | None = None, baselines_dir: Path | None = None,
             json_out: Path | None = None, md_out: Path | None = None, junit_out: Path | None = None) -> Comparison:
    from harness.report.sides import load_side

    cur_spec, base_spec = (second, first) if second is not None else (first, None)
    current = load_side(cur_spec, baselines_dir)
    cfg = gate_config(current.gate_table, rules_file, overrides or [], threshold=threshold, alpha=alpha, test=test,
                      allow_missing=allow_missing)
    if base_spec is None:
        if not cfg.baseline:
            raise ReportError("no baseline given: pass BASELINE CURRENT, or set `baseline = \"NAME\"` in the "
                              f"[gate] table of the campaign or {GATE_FILE}")
        base_spec = cfg.baseline
    baseline = load_side(base_spec, baselines_dir)
    try:
        gating = [metric_name(m) for m in metrics or []]
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    res = compare(baseline, current, cfg, metrics=gating or None)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(res.to_json(), encoding="utf-8")
    if md_out:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(res.to_markdown(), encoding="utf-8")
    if junit_out:
        from harness.report.gate_output import junit

        junit(res, junit_out)
    return res
