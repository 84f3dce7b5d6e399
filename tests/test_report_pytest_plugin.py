"""The pytest plugin, loaded through its ``pytest11`` entry point, in a temporary firmware
repository: a latency budget that holds passes, the regression gate against a stored baseline
fails with the numbers, and pytest's own JUnit output carries both (valid against the XSD)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import xmlschema
from test_report_helpers import build_run

from harness.report.baseline import BaselineStore
from harness.report.sides import from_run

pytest_plugins = ["pytester"]

XSD = Path(__file__).parent / "data" / "junit.xsd"
SLOW = "lenet/structure-99/uint8/sim-pico"

TESTS = f'''
def test_latency_budget(harness_result):
    cfg = harness_result["{SLOW}"]
    assert cfg.status == "measured" and cfg.latency_ms.n == 8
    assert cfg.latency_ms.mean < 200
    assert cfg.flash_bytes > 20_000

def test_no_regression(harness_gate):
    harness_gate.check()

def test_baseline_is_loaded(harness_baseline):
    assert len(harness_baseline) == 12
'''


def test_entry_point_is_registered() -> None:
    eps = {e.name: e.value for e in entry_points(group="pytest11")}
    assert eps.get("harness") == "harness.report.pytest_plugin"


def test_plugin_in_a_firmware_repository(pytester: pytest.Pytester) -> None:
    repo = pytester.path
    base = build_run(repo / "results" / "main", seed=1)
    slow = build_run(repo / "results" / "pr", seed=3, slowdown={SLOW: 1.10})
    BaselineStore(repo / "baselines").save("main", from_run(base))
    pytester.makepyfile(test_perf=TESTS)
    junit = repo / "perf.xml"
    res = pytester.runpytest_subprocess("--harness-result", str(slow), "--harness-baseline", "main", f"--junitxml={junit}")
    res.assert_outcomes(passed=2, failed=1)
    out = res.stdout.str()
    assert "test_no_regression" in out and f"{SLOW} latency_s: regression" in out
    assert "+9." in out and "p = " in out  # the numbers, not a traceback
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(str(junit))
    cases = {c["@name"]: c for s in schema.to_dict(str(junit))["testsuite"] for c in s["testcase"]}
    assert "failure" in cases["test_no_regression"] and "failure" not in cases["test_latency_budget"]


def test_unchanged_run_passes_and_ini_options(pytester: pytest.Pytester) -> None:
    repo = pytester.path
    base = build_run(repo / "results" / "main", seed=1)
    build_run(repo / "results" / "pr", seed=2)
    BaselineStore(repo / "baselines").save("main", from_run(base))
    pytester.makeini("[pytest]\nharness_result = results/pr\nharness_baseline = main\n")
    pytester.makepyfile(test_perf=TESTS)
    pytester.runpytest_subprocess().assert_outcomes(passed=3)


def test_missing_result_is_a_clear_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_perf=TESTS)
    res = pytester.runpytest_subprocess("--harness-result", "results/nowhere")
    res.assert_outcomes(errors=3)
    assert "neither a run folder" in res.stdout.str()


@pytest.mark.slow
def test_plugin_runs_the_campaign_first(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """--harness-campaign: the plugin runs a real campaign on the simulated rig, then loads it."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv("HARNESS_HOME", str(root))
    (pytester.path / "perf.toml").write_text((root / "tests" / "data" / "gate-campaign.toml").read_text())
    pytester.makepyfile(test_perf="""
def test_campaign_was_measured(harness_result):
    cfg = harness_result["ll/none/uint8/sim-m4"]
    assert cfg.status == "measured" and cfg.latency_ms.n == 4
    assert 1 < cfg.latency_ms.mean < 1000 and cfg.cycles.mean > 0 and cfg.flash_bytes > 0
""")
    res = pytester.runpytest_subprocess("--harness-campaign", "perf.toml", "--harness-result", "results/perf",
                                        timeout=900)
    res.assert_outcomes(passed=1)
    assert (pytester.path / "results" / "perf" / "results.sqlite").is_file()
