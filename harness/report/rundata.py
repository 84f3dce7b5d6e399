"""A campaign run loaded for analysis: the store's tables as pandas DataFrames with numeric
columns typed, plus shortcuts for the summary and the paper-style tables (for notebooks)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    import pandas as pd

    from harness.report.table import Table

MEASUREMENT_NUMERIC = (
    "latency_s", "energy_j", "power_w", "baseline_power_w", "energy_net_j", "power_net_w", "cycles",
    "cycle_latency_s", "cross_check_deviation", "sample_interval_s", "window_start_s", "supply_v", "warmup_count",
)
CONFIG_NUMERIC = (
    "rate", "accuracy_target", "accuracy_float", "accuracy_quant", "rel_accuracy", "params", "params_nonzero",
    "macs", "flash_bytes", "ram_bytes", "weights_bytes", "arena_bytes", "flash_size", "ram_size", "fits",
    "device_accuracy", "host_agreement",
)


class ReportError(HarnessError):
    """A report or comparison cannot be made; exit code 2 keeps it apart from a regression (1)."""

    exit_code = 2


class RunNotReadable(ReportError):
    """A run folder cannot be reported or compared (missing, no store, nothing stored)."""


def _numeric(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    df = df.copy()
    for c in cols:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


@dataclass
class RunData:
    """Everything a report needs from one run folder (read once, then analysed in memory)."""

    run_dir: Path
    measurements: pd.DataFrame
    configs: pd.DataFrame
    provenance: pd.DataFrame
    runs: pd.DataFrame
    events: pd.DataFrame

    @property
    def name(self) -> str:
        if len(self.runs):
            return str(self.runs["campaign_name"].iloc[-1])
        return self.run_dir.name

    def campaign(self) -> dict[str, Any]:
        """The campaign TOML stored at the latest start, parsed ({} if absent or unreadable)."""
        if not len(self.runs):
            return {}
        try:
            return tomllib.loads(str(self.runs["campaign_toml"].iloc[-1]))
        except tomllib.TOMLDecodeError:
            return {}

    def summary(self) -> pd.DataFrame:
        """One row per configuration: its fields plus mean/std/n of every metric (ms, mW, mWs)."""
        from harness.report.stats import summarize

        return summarize(self.measurements, self.configs)

    def table3(self) -> Table:
        """The paper's Table 3/4: rel. accuracy | compression | type | system | time | power | energy."""
        from harness.report.tables import performance_table

        return performance_table(self.summary())

    def footprint(self) -> Table:
        from harness.report.tables import footprint_table

        return footprint_table(self.configs)

    def accuracy(self) -> Table:
        from harness.report.tables import accuracy_table

        return accuracy_table(self.configs)


def load_run(run_dir: str | Path) -> RunData:
    """Read ``<run_dir>/results.sqlite``; HarnessError if the folder, store or results are missing."""
    from harness.store import DB_NAME, ResultStore

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunNotReadable(f"run folder {run_dir} does not exist")
    if not (run_dir / DB_NAME).is_file():
        raise RunNotReadable(f"{run_dir} has no {DB_NAME}: not a campaign run folder (or the run never started)")
    with ResultStore(run_dir, create=False) as store:
        data = RunData(
            run_dir=run_dir,
            measurements=_numeric(store.measurements_df(), MEASUREMENT_NUMERIC),
            configs=_numeric(store.configs_df(), CONFIG_NUMERIC),
            provenance=store.provenance_df(),
            runs=store.runs_df(),
            events=store.events_df(),
        )
    if data.configs.empty:
        raise RunNotReadable(f"{run_dir / DB_NAME} holds no configurations yet: nothing to report")
    return data
