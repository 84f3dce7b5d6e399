"""`harness validate`: check configuration files without running anything."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.config.loader import read_toml, repo_root
from harness.errors import ConfigError, HarnessError

KINDS = ("boards", "instruments", "campaigns")


def detect_kind(path: Path) -> str:
    """Which schema a file follows: by its folder, else by its keys."""
    if path.parent.name in KINDS:
        return path.parent.name
    data = read_toml(path)
    if "duts" in data:
        return "instruments"
    if "models" in data or "compression" in data:
        return "campaigns"
    if "mcu" in data or "core" in data:
        return "boards"
    raise ConfigError(str(path), ["cannot tell whether this is a board, rig or campaign file "
                                  "(expected keys 'mcu', 'duts' or 'models')"])


def validate_file(path: Path) -> str:
    """Validate one file; returns a one-line summary or raises ConfigError."""
    return check_file(path)[0]


def check_file(path: Path) -> tuple[str, list[str]]:
    """Validate one file: (one-line summary, warnings) or ConfigError. A warning is something
    right in the file but not on the bench now (an unplugged serial port)."""
    from harness.config import load_rig
    from harness.config.rig import port_warnings

    kind = detect_kind(path)
    if kind == "instruments":
        r = load_rig(path)
        return (f"rig {r.name}: {len(r.duts)} board(s), analyzer {r.power_analyzer.kind} at {r.power_analyzer.resource}",
                port_warnings(r))
    return _summary(path, kind), []


def _summary(path: Path, kind: str) -> str:
    from harness.config import load_board, load_campaign

    if kind == "boards":
        b = load_board(path)
        return f"board {b.name}: {b.mcu} {b.core} @ {b.clock_hz / 1e6:g} MHz, supply {b.supply.nominal_v} V (max {b.supply.abs_max_v} V)"
    from harness.campaign.matrix import expand

    c = load_campaign(path)
    n = len(expand(c))  # the matrix as the runner expands it (per-model compression, runtimes)
    return f"campaign {c.name}: {n} configurations x n={c.repetitions}"


def print_schema(kind: str) -> None:
    """The JSON Schema of one file kind, with every field's type, default and description."""
    import json

    from pydantic import BaseModel

    from harness.config import BoardConfig, CampaignConfig, RigConfig

    models: dict[str, type[BaseModel]] = {"board": BoardConfig, "rig": RigConfig, "campaign": CampaignConfig}
    if kind not in models:
        raise typer.BadParameter(f"{kind!r} is not a schema (allowed: {', '.join(models)})", param_hint="--schema")
    typer.echo(json.dumps(models[kind].model_json_schema(), indent=2))


def validate(
    paths: list[Path] = typer.Argument(
        None, help="Files to check. Default: every shipped file in boards/, instruments/ and campaigns/."
    ),
    schema: str = typer.Option(
        None, "--schema", help="Print the JSON Schema of 'board', 'rig' or 'campaign' files and exit."
    ),
) -> None:
    """Check board, rig and campaign TOML files against their schemas without running anything.

    Each problem names the file, the field, the bad value and what is allowed. Exits 2 if any
    file is invalid. `--schema board|rig|campaign` prints the documented schema instead.
    """
    from rich.console import Console
    from rich.markup import escape

    if schema:
        print_schema(schema)
        return
    console = Console()
    if not paths:
        root = repo_root()
        paths = [p for kind in KINDS for p in sorted((root / kind).glob("*.toml"))]
    bad = 0
    for path in paths:
        try:
            summary, warnings = check_file(path)
            console.print(f"[green]ok[/]   {escape(str(path))}: {escape(summary)}", highlight=False)
            for w in warnings:
                console.print(f"[yellow]warn[/] {escape(str(path))}: {escape(w)} (an error in `harness rig doctor`)",
                              highlight=False)
        except HarnessError as exc:
            bad += 1
            console.print(f"[red]FAIL[/] {escape(str(exc))}", highlight=False)
    from harness.instruments import registry

    for group in registry.GROUPS:  # what rig and board files may name: installed drivers (entry points)
        console.print(f"drivers ({registry.GROUPS[group]}): " + ", ".join(registry.names(group)), highlight=False)
    if bad:
        raise typer.Exit(2)
