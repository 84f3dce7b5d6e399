"""Commands ``harness report`` and ``harness compare`` (registered by harness/cli.py). pandas,
scipy and matplotlib are imported inside the commands so that ``harness --help`` stays fast."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.report.rundata import ReportError

FORMAT_NAMES = ("markdown", "latex", "csv", "html")


def report(
    run_dir: Path = typer.Argument(..., help="Campaign run folder (holds results.sqlite)."),
    formats: list[str] | None = typer.Option(
        None, "--format", "-f", help="Table formats: markdown, latex, csv, html (repeatable; default: the campaign's report settings)."
    ),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the figures (faster; no matplotlib)."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Also tabulate the change against this run folder."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default <run_dir>/report)."),
) -> None:
    """Write paper-style tables and figures of a campaign run into <run_dir>/report/.

    Tables (mean ± sample std over the repetitions, like the paper's Tables 3-5): execution time,
    power and energy per configuration, quantized vs float changes, memory footprint and accuracy,
    each as Markdown, LaTeX (booktabs), CSV and HTML; figures (PNG + SVG) of latency, energy and
    accuracy over compression and of flash/SRAM over model size with the boards' limits; and the
    provenance (harness version, git commit, toolchain, instruments, firmware hashes)."""
    from rich.console import Console

    from harness.report.writer import write_report

    bad = sorted(set(formats or []) - set(FORMAT_NAMES))
    if bad:
        raise ReportError(f"unknown format(s) {bad}; choose from {', '.join(FORMAT_NAMES)}")
    written = write_report(run_dir, formats=formats or None, plots=False if no_plots else None,
                           baseline=baseline, out_dir=out)
    con = Console()
    con.print(f"report: [bold]{written['report'][0]}[/]")
    n_tables, n_plots = len(written["tables"]), len(written["plots"])
    con.print(f"{n_tables} table files, {n_plots} figure files, provenance.json and summary.csv "
              f"in {written['report'][0].parent}")


def compare(
    run: Path = typer.Argument(..., help="Run folder to check."),
    baseline: Path = typer.Argument(..., help="Baseline run folder (e.g. from the main branch)."),
    threshold: float = typer.Option(0.05, "--threshold", help="Relative slowdown that counts (0.05 = 5 %)."),
    alpha: float = typer.Option(0.01, "--alpha", help="Significance level of Welch's t-test."),
    metrics: list[str] = typer.Option(
        ["latency_s", "energy_j"], "--metric", help="Measured columns to compare (repeatable)."
    ),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Do not fail when a baseline configuration has no measurements in the run."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full comparison as JSON here."),
    md_out: Path | None = typer.Option(None, "--markdown", help="Write the Markdown summary here."),
) -> None:
    """Compare a run against a baseline run: the regression gate for CI.

    For every configuration and metric the relative change of the mean is tested with Welch's
    t-test; a metric regresses if it is worse by more than --threshold AND p < --alpha. Exit
    code 0 = no regression, 1 = at least one regression (or a configuration that stopped
    working), 2 = the comparison could not be made (missing run, bad option)."""
    from harness.report.compare import compare_dirs

    try:
        res = compare_dirs(run, baseline, json_out=json_out, md_out=md_out, threshold=threshold, alpha=alpha,
                           metrics=metrics, fail_on_missing=not allow_missing)
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    typer.echo(res.to_markdown())  # plain Markdown: readable in CI logs, pastable into a PR comment
    if not res.passed:
        raise typer.Exit(code=res.exit_code())
