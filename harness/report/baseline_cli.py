"""`harness baseline save | show | list`: bless a run as the baseline CI compares against."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Blessed baselines for `harness compare` (save, show, list).", no_args_is_help=True)

DIR_HELP = "Baselines folder (default $HARNESS_BASELINES or ./baselines; commit it with your firmware)."


@app.callback()
def _group() -> None:
    """Blessed baselines for `harness compare`: stored as baselines/<NAME>.json with provenance."""


@app.command("save")
def save(
    name: str = typer.Argument(..., help="Baseline name, e.g. main or release-1.2 (letters, digits, _ - .)."),
    run: str = typer.Argument(..., help="Run folder or `harness measure -o` result file to freeze."),
    baselines_dir: Path | None = typer.Option(None, "--baselines-dir", help=DIR_HELP),
    force: bool = typer.Option(False, "--force", help="Replace an existing baseline of that name."),
    note: str = typer.Option("", "--note", help="Why this baseline was blessed (stored with it)."),
) -> None:
    """Store RUN as baseline NAME: every configuration's status, repetitions and footprint, plus
    provenance (firmware hashes, build ids and options, toolchain, rig, instruments, git commits,
    simulated or not)."""
    from harness.report.baseline import BaselineStore
    from harness.report.sides import load_side

    side = load_side(run, baselines_dir)
    path = BaselineStore(baselines_dir).save(name, side, force=force, note=note)
    n = len(side.configs)
    measured = sum(c.measured for c in side.configs.values())
    typer.echo(f"baseline {name!r}: {n} configuration(s), {measured} measured, from {run} -> {path}")


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Baseline name."),
    baselines_dir: Path | None = typer.Option(None, "--baselines-dir", help=DIR_HELP),
) -> None:
    """Print a baseline's provenance and its configurations."""
    from rich.console import Console
    from rich.table import Table

    from harness.report.baseline import BaselineStore

    store = BaselineStore(baselines_dir)
    doc = store.document(name)
    side = store.load(name)
    prov = doc["provenance"]
    con = Console()
    con.print(f"[bold]{name}[/] ({store.path(name)}), saved {doc['saved_at']} from {prov.get('source')}"
              + (f": {doc['note']}" if doc.get("note") else ""), highlight=False)
    sim = prov.get("simulated")
    con.print(f"simulated: {'yes' if sim else 'no' if sim is False else 'not recorded'}; rig: "
              f"{', '.join(prov.get('rigs') or []) or 'n/a'}; toolchains: "
              f"{', '.join(prov.get('toolchains') or []) or 'n/a'}; instruments: "
              f"{', '.join(prov.get('instruments') or []) or 'n/a'}; harness git: "
              f"{', '.join(prov.get('harness_git_commit') or []) or 'n/a'}; saved from git: "
              f"{prov.get('saved_from_git_commit') or 'n/a'}", highlight=False)
    t = Table()
    for col in ("configuration", "status", "n", "latency (ms)", "flash (B)", "RAM (B)", "firmware sha256", "build"):
        t.add_column(col)
    for ident, c in sorted(side.configs.items()):
        lat = c.array("latency_s")
        t.add_row(ident.label, c.status, str(len(lat)), f"{lat.mean() * 1e3:.4g}" if len(lat) else "-",
                  f"{c.values['flash_bytes']:,.0f}" if "flash_bytes" in c.values else "-",
                  f"{c.values['ram_bytes']:,.0f}" if "ram_bytes" in c.values else "-",
                  (c.firmware_sha256 or "-")[:16], c.build_id or "-")
    con.print(t)


@app.command("list")
def list_(baselines_dir: Path | None = typer.Option(None, "--baselines-dir", help=DIR_HELP)) -> None:
    """List the stored baselines."""
    from harness.report.baseline import BaselineStore

    store = BaselineStore(baselines_dir)
    names = store.names()
    if not names:
        typer.echo(f"no baselines in {store.root}")
        return
    for n in names:
        doc = store.document(n)
        typer.echo(f"{n}\t{doc['saved_at']}\t{len(doc['side']['configs'])} configuration(s)\t{doc['provenance'].get('source')}")
