"""The comparison for people and CI servers: a terminal table (rich), Markdown for a pull-request
comment (regressions first, unchanged rows folded away), and JUnit XML (junitparser; one test
case per configuration x metric, failures carrying the numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.gate_rules import METRICS

if TYPE_CHECKING:
    from rich.table import Table

    from harness.report.compare import Comparison, MetricChange

STYLE = {"regression": "bold red", "failed": "bold red", "missing": "yellow", "improvement": "green",
         "unchanged": "dim", "n/a": "dim"}


def value_text(c: MetricChange, which: float | None) -> str:
    if which is None:
        return "-"
    if c.metric not in METRICS:
        return f"{which:.4g}"
    info = METRICS[c.metric]
    v = which * info.scale
    if info.unit in ("B", "cycles"):
        return f"{v:,.0f} {info.unit}" if float(v).is_integer() or abs(v) >= 100 else f"{v:,.1f} {info.unit}"
    if info.unit == "pp":
        return f"{v:.2f} %"
    return f"{v:.4g} {info.unit}"


def verdict_text(c: MetricChange) -> str:
    if c.gating or c.verdict not in ("regression", "failed", "missing"):
        return c.verdict
    return {"missing": "missing (allowed)", "failed": "failed (also on baseline)"}.get(c.verdict, f"{c.verdict} (not gating)")


def _p(c: MetricChange) -> str:
    return "-" if c.p_value is None else f"{c.p_value:.3g}"


def headline(res: Comparison) -> str:
    if res.passed:
        return "PASS"
    return f"FAIL ({len(res.regressions)} regression(s))"


def markdown(res: Comparison) -> str:
    lines = [f"## Regression check: {headline(res)}", "",
             f"Current `{res.current}` against baseline `{res.baseline}`."]
    for w in res.warnings:
        lines.append(f"> **warning:** {w}")
    header = ["| configuration | metric | verdict | baseline | current | change | p | n (base/cur) | note |",
              "| :--- | :--- | :--- | ---: | ---: | ---: | ---: | ---: | :--- |"]

    def row(c: MetricChange) -> str:
        verdict = f"**{verdict_text(c)}**" if c.verdict != "unchanged" else "unchanged"
        n = f"{c.n_baseline}/{c.n_current}" if c.n_baseline or c.n_current else "-"
        return (f"| {c.config} | {c.metric} | {verdict} | {value_text(c, c.baseline)} | {value_text(c, c.current)} | "
                f"{c.delta or '-'} | {_p(c)} | {n} | {c.detail} |")

    ordered = res.sorted_changes()
    failing = [c for c in ordered if c.gating]
    changed = [c for c in ordered if not c.gating and c.verdict != "unchanged"]
    same = [c for c in ordered if not c.gating and c.verdict == "unchanged"]
    if failing:
        lines += ["", "### Regressions", "", *header, *map(row, failing)]
    if changed:
        lines += ["", "### Other changes", "", *header, *map(row, changed)]
    if same:
        lines += ["", f"<details><summary>{len(same)} unchanged</summary>", "", *header, *map(row, same), "",
                  "</details>"]
    lines += ["", "Rules: " + "; ".join(f"{m}: {d}" for m, d in res.rules.items()) + "."]
    if res.allow_missing:
        lines.append("Configurations absent on one side are allowed (--allow-missing).")
    return "\n".join(lines) + "\n"


def terminal_table(res: Comparison, show_unchanged: bool = False) -> Table:
    from rich.table import Table

    t = Table(title=f"{headline(res)}: {res.current} vs {res.baseline}", title_justify="left")
    for col, just in (("configuration", "left"), ("metric", "left"), ("verdict", "left"), ("baseline", "right"),
                      ("current", "right"), ("change", "right"), ("p", "right"), ("note", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    hidden = 0
    for c in res.sorted_changes():
        if c.verdict == "unchanged" and not c.gating and not show_unchanged:
            hidden += 1
            continue
        t.add_row(c.config, c.metric, f"[{STYLE.get(c.verdict, '')}]{verdict_text(c)}[/]",
                  value_text(c, c.baseline), value_text(c, c.current), c.delta or "-", _p(c), c.detail)
    if hidden:
        t.caption = f"{hidden} unchanged row(s) not shown (--all shows them)"
    return t


def terminal_report(res: Comparison, show_unchanged: bool = False) -> Any:
    """The table, or one line when every row is unchanged and hidden."""
    if not show_unchanged and all(c.verdict == "unchanged" and not c.gating for c in res.changes):
        return f"[bold green]{headline(res)}[/]: {res.current} vs {res.baseline}: all {len(res.changes)} rows unchanged"
    return terminal_table(res, show_unchanged)


def junit(res: Comparison, path: Path, suite_name: str = "harness compare") -> Path:
    """One <testcase> per configuration x metric: regressions as <failure>, allowed missing
    configurations and metrics without data as <skipped>."""
    from junitparser import Failure, JUnitXml, Skipped, TestCase, TestSuite

    suite = TestSuite(suite_name)
    for c in res.sorted_changes():
        case = TestCase(c.metric, classname=c.config, time=0.0)
        numbers = (f"{c.metric}: baseline {value_text(c, c.baseline)}, current {value_text(c, c.current)}, "
                   f"change {c.delta or '-'}, p {_p(c)}, n {c.n_baseline}/{c.n_current}; rule: "
                   f"{res.rules.get(c.metric, 'configuration must be built, fit and be measured')}")
        if c.gating:
            p = f", p = {c.p_value:.3g}" if c.p_value is not None else ""
            msg = (f"{c.verdict}: {c.detail}" if c.metric == "status" else
                   f"{c.verdict}: {value_text(c, c.baseline)} -> {value_text(c, c.current)} ({c.delta}{p})")
            case.result = [Failure(msg, c.verdict)]
            case.system_out = numbers + (f"\n{c.detail}" if c.detail else "")
        elif c.verdict in ("missing", "n/a", "failed"):
            case.result = [Skipped(f"{verdict_text(c)}: {c.detail}")]
        else:
            case.system_out = numbers
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.update_statistics()
    path.parent.mkdir(parents=True, exist_ok=True)
    xml.write(str(path), pretty=True)
    return path
