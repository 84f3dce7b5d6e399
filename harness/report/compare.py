"""Regression gate for CI: every configuration of a current side against the same configuration
(same :class:`~harness.report.sides.Identity`) of a baseline side, metric by metric.

- Deterministic metrics (flash, RAM, code size, simulated cycles, on-device accuracy) compare
  exactly: any change beyond the rule's absolute tolerance is a regression or an improvement,
  and the delta is shown in the metric's unit ("+5 cycles", "+4,116 B").
- Noisy metrics (latency, power, energy) regress only when worse by more than a relative
  threshold AND a two-sided test (Welch's t or Mann-Whitney U, scipy) gives p < alpha: the
  threshold alone would flag noisy boards, the test alone tiny but significant shifts. Two
  zero-variance samples (deterministic simulator) have no test statistic: equal means give
  p = 1, different means p = 0.
- A configuration measured on the baseline that failed or did not fit on the current side is a
  regression, always. A configuration absent on one side is "missing" and fails the gate unless
  ``allow_missing`` (which covers nothing else)."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.report.gate_rules import METRICS, GateConfig, ResolvedRule, resolve
from harness.report.rundata import ReportError

if TYPE_CHECKING:
    from harness.report.rundata import RunData
    from harness.report.sides import ConfigResult, Side

STATUS = "status"  # the per-configuration row: did it build, fit and get measured on both sides?
ORDER = {"regression": 0, "failed": 1, "missing": 2, "improvement": 3, "new": 4, "n/a": 5, "unchanged": 6}


@dataclass
class MetricChange:
    config: str
    metric: str
    verdict: str  # regression | failed | missing | improvement | unchanged | n/a
    gating: bool = False  # does this row fail the gate?
    baseline: float | None = None  # mean (noisy) or value (deterministic), SI units
    current: float | None = None
    abs_change: float | None = None
    rel_change: float | None = None
    p_value: float | None = None
    n_baseline: int = 0
    n_current: int = 0
    unit: str = ""
    delta: str = ""  # the change as shown: "+5 cycles", "+4,116 B", "+10.20 % (+1.23 ms)"
    detail: str = ""


@dataclass
class Comparison:
    baseline: str
    current: str
    rules: dict[str, str]
    allow_missing: bool
    changes: list[MetricChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.changes if c.gating]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def sorted_changes(self) -> list[MetricChange]:
        return sorted(self.changes, key=lambda c: (not c.gating, ORDER.get(c.verdict, 9), c.config, c.metric))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed, "n_regressions": len(self.regressions)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default, allow_nan=False) + "\n"

    def to_markdown(self) -> str:
        from harness.report.gate_output import markdown

        return markdown(self)


def _json_default(o: Any) -> Any:
    return o.item() if hasattr(o, "item") else str(o)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch's t-test p-value, defined also for zero-variance samples (module doc)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.var(a) == 0 and np.var(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def mannwhitney_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (scipy picks exact or asymptotic); equal constants -> 1."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.ptp(a) == 0 and np.ptp(b) == 0 and a[0] == b[0]:
        return 1.0
    return float(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def format_delta(metric: str, abs_change: float, rel: float | None, exact: bool) -> str:
    """A change in the metric's own unit; deterministic deltas never as a rounded percentage."""
    info = METRICS[metric]
    d = abs_change * info.scale
    if info.unit == "B":
        text = f"{round(d):+,} B"
    elif info.unit == "cycles":
        text = f"{round(d):+,} cycles" if float(d).is_integer() or abs(d) >= 100 else f"{d:+,.1f} cycles"
    elif info.unit == "pp":
        text = f"{d:+.2f} pp"
    else:
        text = f"{d:+.4g} {info.unit}"
    if exact or rel is None:
        return text
    return f"{rel * 100:+.2f} % ({text})"


def _present(c: ConfigResult, metric: str) -> bool:
    return len(c.samples.get(metric, ())) > 0 if METRICS[metric].per_rep else metric in c.values


def _data(c: ConfigResult, metric: str) -> np.ndarray:
    return c.array(metric) if METRICS[metric].per_rep else np.asarray([c.values[metric]], dtype=float)


def compare_metric(label: str, metric: str, base: np.ndarray, cur: np.ndarray, rule: ResolvedRule) -> MetricChange:
    info = METRICS[metric]
    mb, mc = float(base.mean()), float(cur.mean())
    diff = mc - mb
    rel = diff / mb if mb != 0 else math.nan
    sign = 1.0 if rule.direction == "lower" else -1.0
    ch = MetricChange(label, metric, "unchanged", baseline=mb, current=mc, abs_change=diff, rel_change=_finite(rel),
                      n_baseline=len(base), n_current=len(cur), unit=info.unit)
    # A per-repetition metric that is deterministic on the simulator (cycles) can vary on a real
    # board (interrupts, caches): then an exact comparison would flag noise, so it is tested.
    varies = info.per_rep and (np.ptp(base) > 0 or np.ptp(cur) > 0)
    if rule.mode == "exact" and not varies:
        tol = rule.tolerance / info.scale
        worse = sign * diff
        ch.verdict = "regression" if worse > tol else "improvement" if worse < -tol else "unchanged"
        ch.delta = format_delta(metric, diff, ch.rel_change, exact=True)
    else:
        if rule.mode == "exact":
            ch.detail = "varies between repetitions: tested statistically"
        ch.delta = format_delta(metric, diff, ch.rel_change, exact=False)
        p = welch_p(cur, base) if rule.test == "welch" else mannwhitney_p(cur, base)
        ch.p_value = _finite(p)
        if not math.isfinite(p):
            ch.verdict, ch.detail = "n/a", "fewer than 2 repetitions on a side: no test possible"
        elif math.isfinite(rel):
            significant = p < rule.alpha
            worse_rel = sign * rel
            if worse_rel > rule.threshold and significant:
                ch.verdict = "regression"
            elif worse_rel < -rule.threshold and significant:
                ch.verdict = "improvement"
            elif abs(rel) > rule.threshold:
                ch.detail = _join(ch.detail, f"beyond the threshold but p = {p:.3g} >= {rule.alpha:g}: "
                                             "not evidence of a change")
            elif significant and diff != 0:
                ch.detail = _join(ch.detail, f"significant (p = {p:.3g}) but within {rule.threshold * 100:g} %")
    ch.gating = ch.verdict == "regression" and rule.gate
    if ch.verdict == "regression" and not rule.gate:
        ch.detail = _join(ch.detail, "reported only (this metric does not gate)")
    return ch


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _short(reason: str) -> str:
    """A failure reason in one line: its first line and, for a tool's output, its last one (the
    full text stays in the run's store)."""
    lines = [ln.strip() for ln in reason.strip().splitlines() if ln.strip()]
    return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"


def _status_row(label: str, b: ConfigResult | None, c: ConfigResult | None, allow_missing: bool) -> MetricChange:
    if b is None or c is None:
        where = "baseline" if b is None else "current side"
        other = c if b is None else b
        assert other is not None
        allowed = " (allowed by --allow-missing)" if allow_missing else ""
        return MetricChange(label, STATUS, "missing", gating=not allow_missing,
                            detail=f"absent on the {where}; {other.status} on the other{allowed}")
    reason = f": {_short(c.reason)}" if c.reason else ""
    if b.measured and not c.measured:
        return MetricChange(label, STATUS, "failed", gating=True,
                            detail=f"measured on the baseline, {c.status} now{reason}")
    if not b.measured and c.measured:
        return MetricChange(label, STATUS, "improvement", detail=f"{b.status} on the baseline, measured now")
    if not b.measured:
        return MetricChange(label, STATUS, "failed", detail=f"{b.status} on the baseline, {c.status} now{reason}")
    notes = []
    if b.firmware_sha256 and b.firmware_sha256 == c.firmware_sha256:
        notes.append("same firmware image")
    if b.build_options and c.build_options and b.build_options != c.build_options:
        changed = sorted(k for k in set(b.build_options) | set(c.build_options)
                         if b.build_options.get(k) != c.build_options.get(k))
        notes.append("build options changed: " + ", ".join(
            f"{k} {b.build_options.get(k)!r} -> {c.build_options.get(k)!r}" for k in changed))
    return MetricChange(label, STATUS, "unchanged", detail="; ".join(notes))


def compare(baseline: Side, current: Side, gate: GateConfig | None = None, *,
            allow_missing: bool | None = None, metrics: list[str] | None = None) -> Comparison:
    """Compare ``current`` against ``baseline`` under ``gate`` (defaults: gate_rules).

    ``metrics`` restricts which metrics gate (others are still reported)."""
    gate = gate or GateConfig()
    rules = resolve(gate)
    if metrics:
        rules = {n: r if n in metrics else _no_gate(r) for n, r in rules.items()}
    allow = gate.allow_missing if allow_missing is None else allow_missing
    res = Comparison(baseline.label, current.label, {n: r.describe() + ("" if r.gate else ", not gating")
                                                     for n, r in rules.items()}, allow)
    common = set(baseline.configs) & set(current.configs)
    if not common and baseline.configs and current.configs:
        raise ReportError(
            f"no configuration of {current.label} matches one of {baseline.label} (by model, compression, numeric "
            f"type, board, build variant, runtime): baseline has {', '.join(sorted(i.label for i in baseline.configs))}; "
            f"current has {', '.join(sorted(i.label for i in current.configs))}")
    if baseline.simulated is not None and current.simulated is not None and baseline.simulated != current.simulated:
        sim, real = (baseline, current) if baseline.simulated else (current, baseline)
        res.warnings.append(f"{sim.label} was measured on a simulated rig and {real.label} on a real one: "
                            "the numbers are not comparable as measurements")
    for ident in sorted(set(baseline.configs) | set(current.configs)):
        b, c = baseline.configs.get(ident), current.configs.get(ident)
        label = ident.label
        row = _status_row(label, b, c, allow)
        res.changes.append(row)
        if row.detail.startswith("build options changed"):
            res.warnings.append(f"{label}: {row.detail}")
        if b is None or c is None:
            continue
        for metric, rule in rules.items():
            hb, hc = _present(b, metric), _present(c, metric)
            if hb and hc:
                ch = compare_metric(label, metric, _data(b, metric), _data(c, metric), rule)
                if ch.gating and not b.measured:  # broken on both sides: the status row says so
                    ch.gating, ch.detail = False, _join(ch.detail, f"not gating: {b.status} on the baseline")
                res.changes.append(ch)
            elif hb and c.measured:
                res.changes.append(MetricChange(label, metric, "n/a", unit=METRICS[metric].unit,
                                                baseline=float(_data(b, metric).mean()),
                                                detail="not recorded on the current side"))
    return res


def _no_gate(rule: ResolvedRule) -> ResolvedRule:
    from dataclasses import replace

    return replace(rule, gate=False)


# -- convenience wrappers (notebooks, older callers) -------------------------------------------
def compare_runs(run: RunData, baseline: RunData, threshold: float = 0.05, alpha: float = 0.01,
                 metrics: tuple[str, ...] | list[str] | None = None, fail_on_missing: bool = True) -> Comparison:
    """Compare two loaded runs (``run`` = current) with one threshold/alpha for every noisy metric."""
    from harness.report.sides import from_run

    if threshold < 0 or not 0 < alpha < 1:
        raise ValueError("threshold must be >= 0 and alpha in (0, 1)")
    return compare(from_run(baseline.run_dir), from_run(run.run_dir), GateConfig(threshold=threshold, alpha=alpha),
                   allow_missing=not fail_on_missing, metrics=list(metrics) if metrics else None)


def compare_dirs(run_dir: Path, baseline_dir: Path, **kw: Any) -> Comparison:
    """Load two run folders (current, baseline) and compare them."""
    from harness.report.rundata import load_run

    return compare_runs(load_run(run_dir), load_run(baseline_dir), **kw)
