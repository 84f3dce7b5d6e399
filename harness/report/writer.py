"""``harness report``: turn a run folder into ``<run_dir>/report/`` — report.md with every table,
figure link, failure and the provenance, plus each table as .md/.tex/.csv/.html and the figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.report import provenance, render
from harness.report.rundata import RunData, load_run
from harness.report.table import Table
from harness.report.tables import comparison_table

ALL_FORMATS = list(render.FORMATS)


def report_settings(run: RunData) -> tuple[list[str], bool, str | None]:
    """(formats, plots, baseline_run) from the campaign's [report] table, defaults otherwise."""
    rep = run.campaign().get("report", {})
    formats = [f for f in rep.get("formats", ALL_FORMATS) if f in render.FORMATS] or ALL_FORMATS
    return formats, bool(rep.get("plots", True)), rep.get("baseline_run")


def type_comparisons(run: RunData, summary: Any) -> list[Table]:
    """Table-5-style tables of every other numeric type against float32 within the run (our runtime)."""
    from harness.report.tables import extra

    if not summary.empty:
        summary = summary[summary.apply(lambda r: (extra(r, "runtime") or "portable") == "portable", axis=1)]
    types = [t for t in summary["numeric_type"].dropna().unique() if t != "float32"]
    if "float32" not in set(summary["numeric_type"].dropna()):
        return []
    base = summary[summary["numeric_type"] == "float32"]
    tables = []
    for t in sorted(types):
        tab = comparison_table(base, summary[summary["numeric_type"] == t], ["model_id", "compression_id", "board"],
                               "float32", str(t), name=f"compare_{t}_vs_float32")
        if tab.rows:
            tables.append(tab)
    return tables


def runtime_comparisons(summary: Any) -> list[Table]:
    """Table 5: every other kernel backend against our portable runtime (same model, compression,
    numeric type and board); '(%)' = how much a metric increased with the other backend."""
    from harness.report.tables import extra

    if summary.empty:
        return []
    runtime = summary.apply(lambda r: extra(r, "runtime") or "portable", axis=1)
    others = sorted(set(runtime) - {"portable"})
    if not others or "portable" not in set(runtime):
        return []
    on = ["model_id", "compression_id", "numeric_type", "board"]
    base = summary[runtime == "portable"]
    tables = []
    for rt in others:
        tab = comparison_table(base, summary[runtime == rt], on, "our runtime (portable kernels)", f"the {rt} backend",
                               name=f"compare_{rt}_vs_portable")  # fmt: skip
        if tab.rows:
            tables.append(tab)
    return tables


def _status_line(run: RunData) -> str:
    counts = run.configs["status"].value_counts().to_dict()
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"{len(run.configs)} configurations ({parts}); {len(run.measurements)} measured repetitions."


def datasets(run: RunData) -> list[dict[str, Any]]:
    """The distinct datasets the run's models were trained and evaluated on (from each config's record)."""
    from harness.report.tables import extra

    seen: dict[str, dict[str, Any]] = {}
    for _, row in run.configs.iterrows():
        d = extra(row, "dataset")
        if d:
            seen.setdefault(json.dumps(d, sort_keys=True), d)
    return list(seen.values())


def _dataset_lines(found: list[dict[str, Any]]) -> list[str]:
    lines = []
    for d in found:
        text = f"**Dataset:** {d.get('name')} from {d.get('source')}; split {d.get('split')} (train / test)."
        if d.get("synthetic"):
            text += " Synthetic stand-in: latency, power, energy and footprint are real, accuracy is n/a."
        if d.get("note"):
            text += f" Note: {d['note']}"
        lines += [text, ""]
    return lines


def _failures(run: RunData) -> list[str]:
    bad = run.configs[run.configs["status"].isin(["failed", "does-not-fit"])]
    return [f"- `{r.config_id}`: {r.status}" + (f" — {r.failure_reason}" if r.failure_reason else "")
            for r in bad.itertuples()]


def write_report(
    run_dir: str | Path,
    formats: list[str] | None = None,
    plots: bool | None = None,
    baseline: str | Path | None = None,
    out_dir: Path | None = None,
) -> dict[str, list[Path]]:
    """Write the report of a run; returns the written paths grouped as report/tables/plots/data.

    ``formats``/``plots``/``baseline`` default to the campaign's [report] settings."""
    run = load_run(run_dir)
    c_formats, c_plots, c_baseline = report_settings(run)
    formats = formats or c_formats
    plots = c_plots if plots is None else plots
    out = out_dir or run.run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    summary = run.summary()
    tables = [run.table3()]
    tables += runtime_comparisons(summary)
    tables += type_comparisons(run, summary)
    notes: list[str] = []
    if baseline is None and c_baseline:  # from the campaign file: a missing folder is only a note
        found = _resolve(run.run_dir, c_baseline)
        if (found / "results.sqlite").is_file():
            baseline = found
        else:
            notes.append(f"Baseline run `{c_baseline}` (campaign [report].baseline_run) not found; comparison skipped.")
    if baseline is not None:
        base = load_run(_resolve(run.run_dir, baseline))
        tables.append(comparison_table(base.summary(), summary, ["config_id"], f"baseline {base.run_dir.name}",
                                       f"this run {run.run_dir.name}", name="compare_baseline"))
    tables += [run.footprint(), run.accuracy()]
    man = provenance.manifest(run)
    man["datasets"] = datasets(run)
    if man["simulated"]:  # every caption built from simulated parts says so
        for t in tables:
            t.caption = f"{provenance.SIMULATED_CAPTION.capitalize()}. {t.caption}"

    written: dict[str, list[Path]] = {"report": [], "tables": [], "plots": [], "data": []}
    for t in tables:
        written["tables"] += render.write_table(t, out, formats)
    if plots:
        from harness.report.plots import all_plots

        written["plots"] = all_plots(summary, run.configs, out / "plots",
                                     caption=provenance.SIMULATED_CAPTION if man["simulated"] else None)

    prov = out / "provenance.json"
    prov.write_text(json.dumps(man, indent=2, default=str) + "\n", encoding="utf-8")
    summ = out / "summary.csv"
    summary.to_csv(summ, index=False)
    written["data"] = [prov, summ]

    md = out / "report.md"
    md.write_text(_report_markdown(run, tables, written["plots"], man, out, notes), encoding="utf-8")
    written["report"] = [md]
    return written


def _resolve(run_dir: Path, baseline: str | Path) -> Path:
    """A baseline path as given if it exists, else next to the run folder (runs share a parent)."""
    p = Path(baseline)
    if p.is_absolute() or p.exists():
        return p
    sibling = run_dir.parent / p
    return sibling if sibling.exists() else p


def _report_markdown(
    run: RunData, tables: list[Table], plot_paths: list[Path], man: dict[str, Any], out: Path, notes: list[str]
) -> str:
    desc = run.campaign().get("description", "")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# Benchmark report: {run.name}", ""]
    if desc:
        parts += [desc, ""]
    parts += [f"Run folder `{run.run_dir}`, report written {stamp}. {_status_line(run)}", ""]
    if man["simulated"]:
        parts += [f"**{provenance.SIMULATED_CAPTION.capitalize()}**: measured on simulated parts (see Provenance); "
                  "every figure is an estimate, not a measurement of the real boards.", ""]
    parts += _dataset_lines(man.get("datasets", []))
    parts += [*notes, ""] if notes else []
    for t in tables:
        parts += [f"## {t.title}", "", render.to_markdown(t)]
    pngs = [p for p in plot_paths if p.suffix == ".png"]
    if pngs:
        parts += ["## Figures", ""]
        for p in pngs:
            rel = p.relative_to(out)
            parts += [f"![{p.stem.replace('_', ' ')}]({rel.as_posix()}) ([SVG]({rel.with_suffix('.svg').as_posix()}))", ""]
    fails = _failures(run)
    if fails:
        parts += ["## Configurations without measurements", "", *fails, ""]
    parts.append(provenance.to_markdown(man))
    return "\n".join(parts)
