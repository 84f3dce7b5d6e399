"""`harness run`: the main job."""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    campaign: Path = typer.Argument(..., help="Campaign file (campaigns/<name>.toml) or a shipped campaign's name."),
    rig: str = typer.Option(None, "--rig", help="Rig file or name (instruments/<rig>.toml); default: the campaign's."),
    resume: bool = typer.Option(False, "--resume", help="Continue the campaign's run folder where it stopped."),
    new: bool = typer.Option(False, "--new", help="Start a fresh, timestamped run folder."),
    run_dir: Path = typer.Option(None, "--run-dir", help="Run folder (default: <output_dir>/<campaign name>)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="With --resume: try failed configurations again."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the report when the campaign ends."),
    plan: bool = typer.Option(False, "--plan", help="Only list the configurations (and their status, if run before)."),
    build_option: list[str] = typer.Option(
        [], "--build-option", help="Set a build option on every build variant: opt_level=O0, dsp=false, "
                                   "backend=cmsis-nn, sparse=off, extra_cflags='[\"-DX=1\"]', template=mbed (repeatable)."),
    cluster: str = typer.Option(None, "--cluster", help="Run on a Ray cluster whose rig PCs run `harness agent` "
                                                         "(ray://<head>:10001, <head>:6379 or auto); see docs/cluster.md."),
    cluster_wait: float = typer.Option(60.0, "--cluster-wait", min=0, max=86400,
                                       help="With --cluster: seconds to wait for a node with a missing board."),
) -> None:
    """Run a benchmark campaign unattended: for every model x compression x numeric type x board,
    compress (cached), build (cached), flash, verify the board's model hash and outputs, take n
    GPIO-timed measurements of latency, power and energy, and write paper-style tables.

    Every measurement is stored as it is taken in <run folder>/results.sqlite; after a crash or
    Ctrl-C, `--resume` continues without repeating or losing measurements. Configurations that fail
    are recorded with their reason and the campaign goes on.
    """
    from harness.campaign.session import print_plan, run_campaign

    if build_option:  # validated before anything starts
        from harness.campaign.build_options import DEFAULT, parse_overrides, with_overrides

        try:
            with_overrides(DEFAULT, parse_overrides(build_option))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--build-option") from None

    if plan:
        print_plan(campaign, run_dir=run_dir)
        return
    summary = run_campaign(campaign, rig=rig, resume=resume, new=new, run_dir=run_dir,
                           retry_failed=retry_failed, write_report=report, build_options=build_option or None,
                           cluster=cluster, cluster_wait_s=cluster_wait)
    if summary.failed:
        raise typer.Exit(1)
