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
    first: str = typer.Argument(..., metavar="BASELINE",
                                help="Baseline side: a run folder, a `harness measure -o` file or a stored baseline name."),
    second: str | None = typer.Argument(None, metavar="CURRENT",
                                        help="Current side (same kinds). Given one argument only, that one is the "
                                             "current side and the baseline is the \\[gate] table's `baseline`."),
    rules: Path | None = typer.Option(None, "--rules", help="gate.toml with the per-metric rules (default ./gate.toml if present)."),
    rule: list[str] = typer.Option([], "--rule", help="Override one rule: FIELD=VALUE or METRIC.FIELD=VALUE, e.g. "
                                                      "latency.threshold=0.1, flash.tolerance=512, power.gate=true (repeatable)."),
    threshold: float | None = typer.Option(None, "--threshold", help="Relative change that counts for noisy metrics (0.05 = 5 %)."),
    alpha: float | None = typer.Option(None, "--alpha", help="Significance level of the statistical test."),
    test: str | None = typer.Option(None, "--test", help="Statistical test: welch or mannwhitney."),
    metrics: list[str] = typer.Option([], "--metric", help="Only these metrics gate (repeatable; the rest are reported)."),
    allow_missing: bool = typer.Option(
        False, "--allow-missing", help="Configurations absent on one side do not fail (a failed or non-fitting one still does)."
    ),
    baselines_dir: Path | None = typer.Option(None, "--baselines-dir", help="Stored baselines (default $HARNESS_BASELINES or ./baselines)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full comparison as JSON here."),
    md_out: Path | None = typer.Option(None, "--markdown", help="Write the Markdown summary (pull-request comment) here."),
    junit_out: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here (one test case per configuration x metric)."),
    show_all: bool = typer.Option(False, "--all", help="Also list unchanged rows in the terminal table."),
    markdown_stdout: bool = typer.Option(False, "--print-markdown", help="Print Markdown instead of the terminal table."),
) -> None:
    """Compare a current run against a baseline: the regression gate for CI.

    Configurations are matched by model, compression, numeric type, board, build variant and
    runtime. Deterministic metrics (flash, RAM, code size, simulated cycles, on-device accuracy)
    compare exactly and show deltas in their unit; noisy ones (latency, power, energy) regress
    only when worse by more than the threshold AND the test gives p < alpha. A configuration
    that fails or does not fit now but was measured on the baseline is always a regression.
    Exit code 0 = no regression, 1 = regression, 2 = the comparison could not be made."""
    from rich.console import Console

    from harness.report.gate import run_gate

    res = run_gate(first, second, rules_file=rules, overrides=rule, threshold=threshold, alpha=alpha, test=test,
                   metrics=metrics, allow_missing=allow_missing or None, baselines_dir=baselines_dir,
                   json_out=json_out, md_out=md_out, junit_out=junit_out)
    if markdown_stdout:
        typer.echo(res.to_markdown())
    else:
        from harness.report.gate_output import terminal_report

        con = Console(width=200) if not Console().is_terminal else Console()
        for w in res.warnings:
            con.print(f"[yellow]warning:[/] {w}", highlight=False)
        con.print(terminal_report(res, show_unchanged=show_all), highlight=False)
    if not res.passed:
        raise typer.Exit(code=res.exit_code())
