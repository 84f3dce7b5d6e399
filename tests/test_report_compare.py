"""Regression gate on stored runs: an injected 10 % slowdown is flagged (and only there), an
unchanged run passes, a configuration that failed now is a regression even with --allow-missing,
the CLI exits 0/1/2, and Welch p-values match an independent scipy call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_report_helpers import FAILED, build_run

from harness.report import compare_runs, load_run
from harness.report.compare import welch_p

ROOT = Path(__file__).resolve().parents[1]
SLOW = "lenet/structure-99/uint8/sim-pico"
NOISY = {"latency_s", "energy_j", "energy_net_j"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("cmp")
    return {
        "base": build_run(base / "base", seed=1),
        "same": build_run(base / "same", seed=2),
        "slow": build_run(base / "slow", seed=3, slowdown={SLOW: 1.10}),
        "slight": build_run(base / "slight", seed=4, slowdown={SLOW: 1.02}),
    }


def test_identical_distribution_passes(runs: dict[str, Path]) -> None:
    res = compare_runs(load_run(runs["same"]), load_run(runs["base"]))
    assert res.passed and res.exit_code() == 0
    metric_rows = [c for c in res.changes if c.metric != "status"]
    assert {c.verdict for c in metric_rows} == {"unchanged"}
    assert len([c for c in metric_rows if c.metric == "latency_s"]) == 11  # 11 configs with measurements
    # the two configurations that did not measure on either side are listed, but do not fail
    bad = {c.config for c in res.changes if c.metric == "status" and c.verdict == "failed"}
    assert bad == {FAILED, "lenet/element-99/float32/sim-nano33ble"}
    assert not any(c.gating for c in res.changes)


def test_run_against_itself_has_p_one(runs: dict[str, Path]) -> None:
    run = load_run(runs["base"])
    res = compare_runs(run, run)
    assert res.passed
    noisy = [c for c in res.changes if c.metric in NOISY]
    assert noisy and all(c.rel_change == 0 and c.p_value == pytest.approx(1.0) for c in noisy)


def test_ten_percent_slowdown_is_a_regression(runs: dict[str, Path]) -> None:
    res = compare_runs(load_run(runs["slow"]), load_run(runs["base"]), threshold=0.05, alpha=0.01)
    assert not res.passed and res.exit_code() == 1
    assert {(c.config, c.metric) for c in res.regressions} == {(SLOW, m) for m in NOISY}
    lat = next(c for c in res.regressions if c.metric == "latency_s")
    assert lat.rel_change == pytest.approx(0.10, abs=0.01) and lat.p_value < 1e-6
    assert lat.delta.startswith("+9.") and "ms" in lat.delta
    # the same numbers through scipy directly, from the raw rows
    r = load_run(runs["slow"]).measurements
    b = load_run(runs["base"]).measurements
    want = stats.ttest_ind(r.loc[r.config_id == SLOW, "latency_s"], b.loc[b.config_id == SLOW, "latency_s"],
                           equal_var=False).pvalue
    assert lat.p_value == pytest.approx(want, rel=1e-9)


def test_threshold_and_alpha_are_both_required(runs: dict[str, Path]) -> None:
    slight, base = load_run(runs["slight"]), load_run(runs["base"])
    # 2 % slower: significant, but below the 5 % threshold -> passes; a 1 % threshold catches it
    assert compare_runs(slight, base, threshold=0.05).passed
    assert not compare_runs(slight, base, threshold=0.01).passed
    # 10 % slower but an impossible significance level -> passes
    assert compare_runs(load_run(runs["slow"]), base, alpha=1e-300).passed


def test_faster_run_is_an_improvement_not_a_failure(runs: dict[str, Path]) -> None:
    res = compare_runs(load_run(runs["base"]), load_run(runs["slow"]))
    assert res.passed
    assert {c.verdict for c in res.changes if c.config == SLOW and c.metric in NOISY} == {"improvement"}


def test_failed_now_is_a_regression_even_with_allow_missing(tmp_path: Path, runs: dict[str, Path]) -> None:
    from harness.store import ResultStore

    run = build_run(tmp_path / "run", seed=5)
    with ResultStore(run) as s:  # a configuration that measured fine in the baseline now fails early
        s._conn.execute("DELETE FROM measurements WHERE config_id = ?", (SLOW,))
        s.set_status(SLOW, "failed", "build error: undefined reference to `nn_conv'")
    for fail_on_missing in (True, False):
        res = compare_runs(load_run(run), load_run(runs["base"]), fail_on_missing=fail_on_missing)
        assert [(c.config, c.metric, c.verdict) for c in res.regressions] == [(SLOW, "status", "failed")]
        assert "undefined reference" in res.regressions[0].detail


def test_absent_configuration_fails_unless_allowed(tmp_path: Path, runs: dict[str, Path]) -> None:
    from harness.store import ResultStore

    run = build_run(tmp_path / "run", seed=6)
    with ResultStore(run) as s:  # dropped from the matrix
        for table in ("measurements", "provenance", "configurations"):
            s._conn.execute(f"DELETE FROM {table} WHERE config_id = ?", (SLOW,))
    res = compare_runs(load_run(run), load_run(runs["base"]))
    assert [(c.config, c.verdict) for c in res.regressions] == [(SLOW, "missing")]
    assert compare_runs(load_run(run), load_run(runs["base"]), fail_on_missing=False).passed
    # absent on the baseline side (a new configuration) counts the same way
    assert not compare_runs(load_run(runs["base"]), load_run(run)).passed


def test_welch_zero_variance_and_short_samples() -> None:
    a = np.full(8, 0.010)
    assert welch_p(a, a.copy()) == 1.0
    assert welch_p(a, a * 1.1) == 0.0
    assert np.isnan(welch_p(a[:1], a))
    x, y = np.array([1.0, 1.1, 0.9, 1.05]), np.array([1.3, 1.2, 1.25, 1.4, 1.35])
    assert welch_p(x, y) == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=cwd)


def test_cli_exit_codes_and_json(tmp_path: Path, runs: dict[str, Path]) -> None:
    ok = _cli("compare", str(runs["base"]), str(runs["same"]), "--json", str(tmp_path / "ok.json"), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "PASS" in ok.stdout and json.loads((tmp_path / "ok.json").read_text())["passed"] is True

    bad = _cli("compare", str(runs["base"]), str(runs["slow"]), "--threshold", "0.05", "--alpha", "0.01",
               "--json", str(tmp_path / "bad.json"), "--markdown", str(tmp_path / "bad.md"), cwd=tmp_path)
    assert bad.returncode == 1, bad.stderr
    data = json.loads((tmp_path / "bad.json").read_text())
    assert data["passed"] is False and data["n_regressions"] == 3
    assert {c["config"] for c in data["changes"] if c["gating"]} == {SLOW}
    md = (tmp_path / "bad.md").read_text()
    assert "FAIL (3 regression(s))" in md
    assert md.index("### Regressions") < md.index("unchanged</summary>")

    # a looser threshold lets the same run pass, from the CLI and from a gate.toml rule
    assert _cli("compare", str(runs["base"]), str(runs["slow"]), "--threshold", "0.2", cwd=tmp_path).returncode == 0
    (tmp_path / "gate.toml").write_text("[gate]\nthreshold = 0.2\n")
    assert _cli("compare", str(runs["base"]), str(runs["slow"]), cwd=tmp_path).returncode == 0
    assert _cli("compare", str(runs["base"]), str(runs["slow"]), "--rule", "latency.threshold=0.05",
                cwd=tmp_path).returncode == 1

    missing = _cli("compare", str(runs["base"]), str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "neither a run folder" in " ".join(missing.stderr.split())
    assert "Traceback" not in missing.stderr
    bad_rule = _cli("compare", str(runs["base"]), str(runs["same"]), "--rule", "latncy.threshold=1", cwd=tmp_path)
    assert bad_rule.returncode == 2 and "unknown metric 'latncy'" in bad_rule.stderr, bad_rule.stderr
    (tmp_path / "gate.toml").write_text("[gate]\nalpha = 3\n")
    bad_file = _cli("compare", str(runs["base"]), str(runs["same"]), cwd=tmp_path)
    assert bad_file.returncode == 2 and "gate.alpha" in bad_file.stderr and "Traceback" not in bad_file.stderr


def test_failed_config_with_partial_data_is_still_compared(runs: dict[str, Path]) -> None:
    res = compare_runs(load_run(runs["same"]), load_run(runs["base"]))
    partial = [c for c in res.changes if c.config == FAILED and c.metric in NOISY]
    assert partial and all(c.n_current == 3 and c.n_baseline == 3 for c in partial)


def test_report_table5_against_baseline_run(tmp_path: Path, runs: dict[str, Path]) -> None:
    import csv
    import sqlite3

    from harness.report import write_report

    def raw_mean(run: Path, cid: str) -> float:
        con = sqlite3.connect(run / "results.sqlite")
        vals = [v for (v,) in con.execute("SELECT latency_s FROM measurements WHERE config_id = ?", (cid,))]
        con.close()
        return float(np.mean(vals)) * 1e3

    out = tmp_path / "rep"
    written = write_report(runs["slow"], formats=["csv", "markdown"], plots=False, baseline=runs["base"], out_dir=out)
    assert out / "compare_baseline.csv" in written["tables"]
    with open(out / "compare_baseline.csv", newline="") as fh:
        rows = {r["config_id"]: r for r in csv.DictReader(fh)}
    want = (raw_mean(runs["slow"], SLOW) / raw_mean(runs["base"], SLOW) - 1) * 100
    assert float(rows[SLOW]["latency_ms_change_pct"]) == pytest.approx(want, rel=1e-9)
    assert 8 < want < 12
    md = (out / "report.md").read_text()
    assert "this run slow compared with baseline base" in md and f"{want:.2f}" in md
