"""Regression gate for CI: compare every configuration of a run with the same configuration of a
baseline run. A metric regresses when it got worse by more than a relative threshold AND Welch's
t-test (unequal variances; scipy) says the difference is unlikely to be noise (p < alpha) — the
threshold alone would flag noisy boards, the test alone would flag tiny but significant shifts.

Two samples with zero variance (deterministic simulator runs) have no t statistic: identical
means give p = 1, different means p = 0. A configuration measured in the baseline but not in the
run (failed, no longer fits) counts as a regression unless ``fail_on_missing`` is off."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from harness.report.rundata import RunData

DEFAULT_METRICS = ("latency_s", "energy_j")


@dataclass
class MetricChange:
    config_id: str
    metric: str
    verdict: str  # regression | improvement | unchanged | missing | new
    n_run: int = 0
    n_base: int = 0
    mean_run: float | None = None
    mean_base: float | None = None
    rel_change: float | None = None
    p_value: float | None = None


@dataclass
class Comparison:
    run: str
    baseline: str
    threshold: float
    alpha: float
    metrics: list[str]
    changes: list[MetricChange] = field(default_factory=list)

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.changes if c.verdict in ("regression", "missing")]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_json(self) -> str:
        d = asdict(self) | {"passed": self.passed, "n_regressions": len(self.regressions)}
        return json.dumps(d, indent=2, default=_json_default, allow_nan=False) + "\n"

    def to_markdown(self) -> str:
        head = "PASS" if self.passed else f"FAIL ({len(self.regressions)} regression(s))"
        lines = [
            f"## Regression check: {head}", "",
            f"Run `{self.run}` against baseline `{self.baseline}`; a metric regresses if it is worse by more than "
            f"{self.threshold * 100:g}% and Welch's t-test gives p < {self.alpha:g}.", "",
            "| configuration | metric | verdict | baseline mean | run mean | change | p | n (base/run) |",
            "| :--- | :--- | :--- | ---: | ---: | ---: | ---: | ---: |",
        ]
        order = {"regression": 0, "missing": 1, "improvement": 2, "new": 3, "unchanged": 4}
        for c in sorted(self.changes, key=lambda c: (order[c.verdict], c.config_id, c.metric)):
            lines.append(
                f"| {c.config_id} | {c.metric} | **{c.verdict}** | {_g(c.mean_base)} | {_g(c.mean_run)} | "
                f"{_pct(c.rel_change)} | {_g(c.p_value)} | {c.n_base}/{c.n_run} |"
            )
        return "\n".join(lines) + "\n"


def _json_default(o: Any) -> Any:
    return o.item() if hasattr(o, "item") else str(o)


def _g(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.2f}%"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def welch_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Welch's t-test p-value, defined also for zero-variance samples (see module doc)."""
    import numpy as np
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan
    if np.var(a) == 0 and np.var(b) == 0:
        return 1.0 if np.mean(a) == np.mean(b) else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def _verdict(rel: float, p: float, threshold: float, alpha: float) -> str:
    if not math.isfinite(rel):
        return "unchanged"
    significant = math.isfinite(p) and p < alpha
    if rel > threshold and significant:
        return "regression"
    if rel < -threshold and significant:
        return "improvement"
    return "unchanged"


def compare_runs(
    run: RunData,
    baseline: RunData,
    threshold: float = 0.05,
    alpha: float = 0.01,
    metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS,
    fail_on_missing: bool = True,
) -> Comparison:
    """Per configuration and metric: relative change of the mean, Welch p-value and a verdict.

    Larger is worse for every metric compared (latency, energy, power)."""
    if threshold < 0 or not 0 < alpha < 1:
        raise ValueError("threshold must be >= 0 and alpha in (0, 1)")
    res = Comparison(str(run.run_dir), str(baseline.run_dir), threshold, alpha, list(metrics))
    rm, bm = run.measurements, baseline.measurements
    for metric in metrics:
        if metric not in bm.columns or metric not in rm.columns:
            raise ValueError(f"unknown metric {metric!r}; measured columns include latency_s, energy_j, power_w")
        base_groups = {k: g[metric].dropna().to_numpy(float) for k, g in bm.groupby("config_id")}
        run_groups = {k: g[metric].dropna().to_numpy(float) for k, g in rm.groupby("config_id")}
        for cid, b in sorted(base_groups.items()):
            if len(b) == 0:
                continue
            r = run_groups.get(cid)
            if r is None or len(r) == 0:
                res.changes.append(MetricChange(cid, metric, "missing" if fail_on_missing else "unchanged",
                                                n_base=len(b), mean_base=float(b.mean())))
                continue
            rel = float(r.mean() / b.mean() - 1.0) if b.mean() != 0 else math.nan
            p = welch_p(r, b)
            res.changes.append(MetricChange(
                cid, metric, _verdict(rel, p, threshold, alpha), len(r), len(b), float(r.mean()), float(b.mean()),
                _finite(rel), _finite(p),
            ))
        for cid in sorted(set(run_groups) - set(base_groups)):
            r = run_groups[cid]
            if len(r):
                res.changes.append(MetricChange(cid, metric, "new", n_run=len(r), mean_run=float(r.mean())))
    return res


def compare_dirs(
    run_dir: Path, baseline_dir: Path, json_out: Path | None = None, md_out: Path | None = None, **kw: Any
) -> Comparison:
    """Load two run folders, compare them and optionally write the JSON/Markdown summaries."""
    from harness.report.rundata import load_run

    res = compare_runs(load_run(run_dir), load_run(baseline_dir), **kw)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(res.to_json(), encoding="utf-8")
    if md_out:
        md_out.parent.mkdir(parents=True, exist_ok=True)
        md_out.write_text(res.to_markdown(), encoding="utf-8")
    return res
