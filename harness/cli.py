"""The `harness` command line. Each pipeline stage lives in its own sub-package and contributes
its commands from ``harness/<stage>/cli.py``; this module only wires them together and turns
HarnessError into a clean message and exit code."""

from __future__ import annotations

import importlib
import sqlite3
import sys

import typer
from rich.console import Console
from rich.markup import escape

from harness import __version__, stop
from harness.errors import HarnessError

err_console = Console(stderr=True)

app = typer.Typer(
    name="harness",
    help=(
        "Hardware-in-the-loop benchmarking of neural networks on Arm Cortex-M boards: "
        "compress -> build -> flash -> measure -> report, on a real bench or the simulated rig."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command name, module, function, help when the function has no docstring)
STAGE_COMMANDS: list[tuple[str, str, str, str]] = [
    ("compress", "harness.compress.cli", "compress", "Train, prune and quantize a model into an artifact."),
    ("build", "harness.build.cli", "build", "Generate C for an artifact and cross-compile firmware for a board."),
    ("flash", "harness.flash.cli", "flash", "Program firmware into a board through pyOCD (or a DAPLink drive)."),
    ("measure", "harness.instruments.cli", "measure", "Measure latency, power and energy of flashed firmware."),
    ("run", "harness.campaign.cli", "run", "Run a whole benchmark campaign (the main job)."),
    ("report", "harness.report.cli", "report", "Write paper-style tables and plots for a campaign run."),
    ("compare", "harness.report.cli", "compare", "Compare a current run against a baseline (regression gate for CI)."),
    ("validate", "harness.config.cli", "validate", "Check board, rig and campaign files without running anything."),
    ("agent", "harness.campaign.agent", "agent", "Join this rig PC to a Ray cluster (harness run --cluster)."),
]
SUB_APPS: list[tuple[str, str, str]] = [
    ("rig", "harness.instruments.cli", "Inspect the bench: probes, serial ports, instruments (rig doctor)."),
    ("sim", "harness.sim.cli", "The simulated rig: emulated boards and the simulated N6705A."),
    ("baseline", "harness.report.baseline_cli", "Blessed baselines for `harness compare` (save, show, list)."),
]


def _register() -> None:
    """Every stage is part of the product: a module that fails to import is a bug, shown as one."""
    for name, module, func, help_text in STAGE_COMMANDS:
        fn = getattr(importlib.import_module(module), func)
        app.command(name, help=fn.__doc__ or help_text)(fn)
    for name, module, help_text in SUB_APPS:
        app.add_typer(importlib.import_module(module).app, name=name, help=help_text)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the harness version and exit."),
) -> None:
    if version:
        typer.echo(f"harness {__version__}")
        raise typer.Exit()


_register()


def main() -> None:
    import logging

    logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks per record
    try:
        try:
            rc = app(standalone_mode=False)
        except Exception as exc:
            if stop.caused_by_interrupt(exc):  # an interrupt Python wrapped on its way out
                raise KeyboardInterrupt from exc
            raise
        if rc == 130:  # typer returns Ctrl-C (and SIGTERM during a run) as exit code 130, silently
            raise KeyboardInterrupt
        sys.exit(rc if isinstance(rc, int) else 0)
    except HarnessError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except (OSError, sqlite3.Error) as exc:
        # a full disk or read-only folder anywhere (log file, report, lock): a message, not a traceback
        from harness.store.storage import storage_error

        err = storage_error(exc, getattr(exc, "filename", None) or "(results store)")
        if err is None:
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/] (what was stored is kept; a run continues with --resume)")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as exc:
        # usage errors from typer's (vendored) click: shown, not traced
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
