"""pytest plugin (entry point ``pytest11: harness``): benchmark results as fixtures, so a
firmware repository writes performance budgets and the regression gate as ordinary tests.

    def test_latency(harness_result):
        assert harness_result["lenet/none/uint8/sim-m4"].latency_ms.mean < 20

    def test_gate(harness_gate):
        harness_gate.check()            # every gating rule; .check("latency") for one metric

Options (or ini keys of the same name with underscores): ``--harness-result`` (run folder,
``harness measure -o`` file or baseline name), ``--harness-campaign`` (run this campaign first,
into ``--harness-result`` or results/<campaign>), ``--harness-baseline``, ``--harness-baselines-dir``,
``--harness-rules``. Nothing heavy is imported until a fixture is used."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from harness.report.compare import Comparison
    from harness.report.gate_rules import GateConfig
    from harness.report.sides import ConfigResult, Side

OPTIONS = {
    "harness_result": "Current results: a run folder, a `harness measure -o` file or a stored baseline name.",
    "harness_campaign": "Campaign file to run (with --resume) before the tests; results go to --harness-result.",
    "harness_baseline": "Baseline to compare with (default: the [gate] table's `baseline`).",
    "harness_baselines_dir": "Folder of stored baselines (default $HARNESS_BASELINES or <rootdir>/baselines).",
    "harness_rules": "gate.toml with the per-metric rules (default <rootdir>/gate.toml if present).",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "MCU benchmark harness results")
    for name, help_text in OPTIONS.items():
        group.addoption("--" + name.replace("_", "-"), dest=name, default=None, help=help_text)
        parser.addini(name, help_text, default=None)


def _opt(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name) or config.getini(name)
    return str(value) if value else None


@dataclass(frozen=True)
class Stat:
    """One metric over the repetitions, in the unit of its name (ms, mJ, mW, cycles)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else float("nan")

    @property
    def std(self) -> float:
        if len(self.values) < 2:
            return float("nan")
        m = self.mean
        return (sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1)) ** 0.5

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")

    def __repr__(self) -> str:
        return f"Stat(mean={self.mean:.6g}, std={self.std:.3g}, n={self.n})"


SCALED = {"latency_ms": ("latency_s", 1e3), "energy_mj": ("energy_j", 1e3), "power_mw": ("power_w", 1e3),
          "energy_net_mj": ("energy_net_j", 1e3), "cycles": ("cycles", 1.0)}


class ConfigView:
    """One configuration's results with readable attribute names."""

    latency_ms: Stat
    energy_mj: Stat
    power_mw: Stat
    energy_net_mj: Stat
    cycles: Stat
    flash_bytes: float | None
    ram_bytes: float | None
    code_bytes: float | None
    weights_bytes: float | None
    device_accuracy: float | None

    def __init__(self, result: ConfigResult):
        self.result = result
        self.label = result.identity.label
        self.status = result.status
        self.reason = result.reason
        for attr, (metric, scale) in SCALED.items():
            setattr(self, attr, Stat(tuple(v * scale for v in result.samples.get(metric, []))))
        for metric in ("flash_bytes", "ram_bytes", "code_bytes", "weights_bytes", "device_accuracy"):
            setattr(self, metric, result.values.get(metric))

    def __repr__(self) -> str:
        return f"<{self.label}: {self.status}>"


class Results(Mapping[str, ConfigView]):
    """Configurations by identity label (``model/compression/numeric/board[/build]``) or id."""

    def __init__(self, side: Side):
        self.side = side
        self._views = {c.identity.label: ConfigView(c) for c in side.configs.values()}
        self._ids = {c.config_id: c.identity.label for c in side.configs.values()}

    def __getitem__(self, key: str) -> ConfigView:
        label = key if key in self._views else self._ids.get(key)
        if label is None:
            raise KeyError(f"{key!r} is not a configuration of {self.side.label}; it has: {', '.join(sorted(self._views))}")
        return self._views[label]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._views))

    def __len__(self) -> int:
        return len(self._views)


class Gate:
    """The comparison of the current results with the baseline, as assertions."""

    def __init__(self, comparison: Comparison):
        self.comparison = comparison

    @property
    def passed(self) -> bool:
        return self.comparison.passed

    def check(self, metric: str | None = None, config: str | None = None) -> None:
        """Fail the calling test with the numbers of every gating regression (optionally of one
        metric / configuration)."""
        from harness.report.gate_output import value_text
        from harness.report.gate_rules import metric_name

        wanted = metric_name(metric) if metric and metric != "status" else metric
        bad = [c for c in self.comparison.regressions
               if (wanted is None or c.metric == wanted) and (config is None or c.config == config)]
        if bad:
            lines = [f"{len(bad)} regression(s) against {self.comparison.baseline}:"]
            for c in bad:
                nums = "" if c.metric == "status" else (
                    f" {value_text(c, c.baseline)} -> {value_text(c, c.current)} ({c.delta}"
                    + (f", p = {c.p_value:.3g}" if c.p_value is not None else "") + ")")
                lines.append(f"  {c.config} {c.metric}: {c.verdict}{nums}{'; ' + c.detail if c.detail else ''}")
            pytest.fail("\n".join(lines), pytrace=False)


def _baselines_dir(config: pytest.Config) -> Path:
    given = _opt(config, "harness_baselines_dir")
    if given:
        return Path(given)
    return Path(os.environ["HARNESS_BASELINES"]) if os.environ.get("HARNESS_BASELINES") else config.rootpath / "baselines"


def _run_campaign(campaign: str, run_dir: Path) -> None:
    args = [sys.executable, "-m", "harness.cli", "run", campaign, "--run-dir", str(run_dir), "--no-report"]
    if (run_dir / "results.sqlite").exists():
        args.append("--resume")
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode not in (0, 1):  # 1: some configurations failed, recorded in the results
        pytest.fail(f"`{' '.join(args[2:])}` exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)


@pytest.fixture(scope="session")
def harness_current_side(request: pytest.FixtureRequest) -> Side:
    from harness.errors import HarnessError
    from harness.report.sides import load_side

    config = request.config
    spec, campaign = _opt(config, "harness_result"), _opt(config, "harness_campaign")
    if campaign:
        spec = spec or str(Path("results") / Path(campaign).stem)
        _run_campaign(campaign, Path(spec))
    if not spec:
        pytest.fail("no harness results: pass --harness-result RUN (or --harness-campaign FILE)", pytrace=False)
    try:
        return load_side(spec, _baselines_dir(config))
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def harness_result(harness_current_side: Side) -> Results:
    """The current results, by configuration label."""
    return Results(harness_current_side)


@pytest.fixture(scope="session")
def harness_gate_rules(request: pytest.FixtureRequest, harness_current_side: Side) -> GateConfig:
    """The gate rules: campaign [gate] table, then --harness-rules or <rootdir>/gate.toml."""
    from harness.errors import HarnessError
    from harness.report.gate import gate_config

    config = request.config
    rules = _opt(config, "harness_rules")
    default = config.rootpath / "gate.toml"
    try:
        return gate_config(harness_current_side.gate_table, Path(rules) if rules else
                           (default if default.is_file() else None), [])
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def harness_baseline_side(request: pytest.FixtureRequest, harness_gate_rules: GateConfig) -> Side:
    from harness.errors import HarnessError
    from harness.report.sides import load_side

    base = _opt(request.config, "harness_baseline") or harness_gate_rules.baseline
    if not base:
        pytest.fail("no baseline: pass --harness-baseline NAME or set `baseline` in the [gate] table", pytrace=False)
    try:
        return load_side(base, _baselines_dir(request.config))
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def harness_baseline(harness_baseline_side: Side) -> Results:
    """The baseline's results, by configuration label."""
    return Results(harness_baseline_side)


@pytest.fixture(scope="session")
def harness_gate(harness_baseline_side: Side, harness_current_side: Side, harness_gate_rules: GateConfig) -> Gate:
    """The comparison with the baseline under the gate rules; ``.check()`` asserts it."""
    from harness.errors import HarnessError
    from harness.report.compare import compare

    try:
        return Gate(compare(harness_baseline_side, harness_current_side, harness_gate_rules))
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
