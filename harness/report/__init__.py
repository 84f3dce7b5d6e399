"""Paper-style reports and regression comparison of campaign runs.

Notebook use: ``run = harness.report.load_run("results/<run>")``; ``run.summary()``,
``run.table3()``; ``report(run_dir)`` writes everything; ``compare_runs(run, base)``. Names are
loaded lazily so that importing the CLI does not import pandas."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "RunData": "harness.report.rundata",
    "load_run": "harness.report.rundata",
    "report": "harness.report.writer",
    "write_report": "harness.report.writer",
    "compare_runs": "harness.report.compare",
    "compare_dirs": "harness.report.compare",
    "Comparison": "harness.report.compare",
    "Table": "harness.report.table",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    import importlib

    if name == "report":
        return importlib.import_module("harness.report.writer").write_report
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
