"""The compare engine on synthetic repetitions (noise vs a real shift, exact deterministic
metrics), per-metric rules from TOML and the CLI, measure-file and baseline sides, and the JUnit
output validated against a JUnit XSD (tests/data/junit.xsd)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xmlschema
from test_report_helpers import build_run

from harness.report.baseline import BaselineStore
from harness.report.compare import compare, format_delta
from harness.report.gate import gate_config, run_gate
from harness.report.gate_output import junit, markdown
from harness.report.gate_rules import GateConfig, parse_gate
from harness.report.rundata import ReportError
from harness.report.sides import ConfigResult, Identity, Side, from_run, load_side

XSD = Path(__file__).parent / "data" / "junit.xsd"
ID = Identity("lenet", "none", "uint8", "sim-m4")


def side(label: str, latency: np.ndarray, cycles: list[float] | None = None, flash: float = 40_000,
         status: str = "measured", simulated: bool | None = True) -> Side:
    res = ConfigResult(ID, ID.label, status, samples={"latency_s": list(latency), "energy_j": list(latency * 0.1)},
                       values={"flash_bytes": flash, "ram_bytes": 9_000})
    if cycles is not None:
        res.samples["cycles"] = cycles
    return Side(label, "run", label, {ID: res}, simulated)


def noisy(rng: np.random.Generator, n: int, shift: float, noise: float = 0.02) -> np.ndarray:
    return 0.050 * (1 + shift) * (1 + rng.normal(0, noise, n))


def verdict(res, metric: str) -> str:  # type: ignore[no-untyped-def]
    return next(c.verdict for c in res.changes if c.metric == metric)


@pytest.mark.parametrize("seed", range(5))
def test_half_percent_under_two_percent_noise_passes_ten_percent_fails(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = side("base", noisy(rng, 8, 0.0))
    small = compare(base, side("cur", noisy(rng, 8, 0.005)))
    assert small.passed and verdict(small, "latency_s") == "unchanged"
    big = compare(base, side("cur", noisy(rng, 8, 0.10)))
    assert not big.passed and verdict(big, "latency_s") == "regression" and verdict(big, "energy_j") == "regression"


def test_significant_but_tiny_shift_stays_green() -> None:
    """With many repetitions +0.5 % is statistically clear, and still below the practical threshold."""
    rng = np.random.default_rng(7)
    res = compare(side("b", noisy(rng, 400, 0.0)), side("c", noisy(rng, 400, 0.005, noise=0.002)))
    lat = next(c for c in res.changes if c.metric == "latency_s")
    assert lat.p_value is not None and lat.p_value < 0.01 and lat.verdict == "unchanged"
    assert "within 5 %" in lat.detail


def test_five_cycles_are_flagged_and_shown_in_cycles() -> None:
    lat = np.full(8, 0.050)
    res = compare(side("b", lat, cycles=[94_261.0] * 8), side("c", lat, cycles=[94_266.0] * 8))
    cyc = next(c for c in res.changes if c.metric == "cycles")
    assert cyc.verdict == "regression" and cyc.gating and cyc.delta == "+5 cycles"
    assert "+5 cycles" in markdown(res) and "%" not in cyc.delta
    # a tolerance in the rule's unit lets it pass
    lenient = parse_gate({"gate": {"metrics": {"cycles": {"tolerance": 5}}}}, "test")
    assert compare(side("b", lat, cycles=[94_261.0] * 8), side("c", lat, cycles=[94_266.0] * 8), lenient).passed


def test_flash_growth_is_exact_and_in_bytes() -> None:
    lat = np.full(8, 0.050)
    res = compare(side("b", lat, flash=40_000), side("c", lat, flash=44_116))
    fl = next(c for c in res.changes if c.metric == "flash_bytes")
    assert (fl.verdict, fl.delta, fl.gating) == ("regression", "+4,116 B", True)
    assert verdict(compare(side("b", lat, flash=44_116), side("c", lat, flash=40_000)), "flash_bytes") == "improvement"


def test_mann_whitney_rule_and_direction() -> None:
    rng = np.random.default_rng(3)
    b, c = noisy(rng, 10, 0.0), noisy(rng, 10, 0.10)
    cfg = parse_gate({"test": "mannwhitney"}, "t")
    res = compare(side("b", b), side("c", c), cfg)
    from scipy import stats

    lat = next(x for x in res.changes if x.metric == "latency_s")
    assert lat.p_value == pytest.approx(stats.mannwhitneyu(c, b, alternative="two-sided").pvalue)
    assert lat.verdict == "regression" and "Mann-Whitney" in res.rules["latency_s"]
    # "higher is better" turns the same shift into an improvement
    up = parse_gate({"metrics": {"latency": {"direction": "higher"}}}, "t")
    assert verdict(compare(side("b", b), side("c", c), up), "latency_s") == "improvement"


def test_non_gating_metric_is_reported_not_failed() -> None:
    rng = np.random.default_rng(4)
    cfg = parse_gate({"metrics": {"latency": {"gate": False}, "energy": {"gate": False}}}, "t")
    res = compare(side("b", noisy(rng, 8, 0)), side("c", noisy(rng, 8, 0.2)), cfg)
    assert res.passed and verdict(res, "latency_s") == "regression"


def test_failed_current_side_is_regression_even_with_allow_missing() -> None:
    lat = np.full(8, 0.050)
    cur = side("c", np.array([]), status="failed")
    cur.configs[ID].reason = "build error"
    res = compare(side("b", lat), cur, allow_missing=True)
    assert [(c.metric, c.verdict) for c in res.regressions] == [("status", "failed")]


def test_simulated_mixed_with_real_warns() -> None:
    lat = np.full(8, 0.050)
    res = compare(side("b", lat, simulated=True), side("c", lat, simulated=False))
    assert any("simulated rig" in w for w in res.warnings)
    assert "simulated rig" in markdown(res)
    assert not compare(side("b", lat, simulated=None), side("c", lat, simulated=False)).warnings


def test_rules_layering_and_overrides(tmp_path: Path) -> None:
    f = tmp_path / "gate.toml"
    f.write_text('[gate]\nalpha = 0.05\n[gate.metrics.flash]\ntolerance = 100\n')
    cfg = gate_config({"threshold": 0.1, "metrics": {"latency": {"threshold": 0.2}}}, f,
                      ["latency.threshold=0.03", "power.gate=true", "test=mannwhitney"], alpha=None, threshold=None)
    assert cfg.threshold == 0.1 and cfg.alpha == 0.05 and cfg.test == "mannwhitney"
    assert cfg.metrics["latency_s"].threshold == 0.03 and cfg.metrics["flash_bytes"].tolerance == 100
    assert cfg.metrics["power_w"].gate is True
    with pytest.raises(ReportError, match="unknown metric"):
        gate_config(None, None, ["speed.threshold=1"])
    with pytest.raises(ReportError, match="KEY=VALUE"):
        gate_config(None, None, ["alpha"])


def test_junit_validates_and_carries_the_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    res = compare(side("b", noisy(rng, 8, 0), cycles=[100.0] * 8), side("c", noisy(rng, 8, 0.1), cycles=[105.0] * 8))
    path = junit(res, tmp_path / "gate.xml")
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(str(path))
    doc = schema.to_dict(str(path))
    cases = {(c["@classname"], c["@name"]): c for s in doc["testsuite"] for c in s["testcase"]}
    assert len(cases) == len(res.changes)
    cyc = cases[(ID.label, "cycles")]
    assert "+5 cycles" in cyc["failure"][0]["@message"]
    lat = cases[(ID.label, "latency_s")]
    assert "failure" in lat and "%" in lat["failure"][0]["@message"]
    assert "failure" not in cases[(ID.label, "ram_bytes")]
    # the schema is not vacuous: a test case without a name is rejected
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite name="x" tests="1"><testcase classname="a"/></testsuite></testsuites>')
    assert not schema.is_valid(str(bad))


def _footprint(flash_total: int, code: int, ram_total: int) -> dict:
    """A footprint.json in the build stage's format (numbers made up, consistent with each other)."""
    weights, stack = flash_total - code - 500, 2048
    return {"board": "sim-m4",
            "flash": {"vectors": 400, "code": code, "weights": weights, "rodata_other": 96, "data_init": 4,
                      "total": flash_total, "available": 1 << 20, "used_pct": round(100 * flash_total / (1 << 20), 2),
                      "model_code": 3_000, "model_const": 50},
            "ram": {"data": 4, "bss": 100, "arena": ram_total - 104 - stack, "stack": stack, "code": 0, "heap": 0,
                    "total": ram_total, "available": 1 << 18, "used_pct": round(100 * ram_total / (1 << 18), 2)},
            "berkeley": {"text": flash_total - 4, "data": 4, "bss": ram_total - 4},
            "sections": {".text": code, ".rodata": weights + 96}, "weights_symbols": {"w": weights},
            "model_bss_symbols": {"arena": ram_total - 104 - stack}, "arena_symbol": "arena", "fits": True}  # fmt: skip


def test_measure_file_side_and_baseline_roundtrip(tmp_path: Path) -> None:
    def measure_doc(scale: float) -> dict:
        lat = [0.010 * scale] * 8
        return {"board": "sim-m4", "rig": "sim", "firmware": str(tmp_path / "fw" / "firmware.elf"),
                "simulated": True, "inferences": [{"index": i, "latency_s": v, "energy_j": v * 0.1, "power_w": 0.1,
                                                   "energy_net_j": v * 0.05} for i, v in enumerate(lat)]}

    (tmp_path / "fw").mkdir()
    (tmp_path / "fw" / "footprint.json").write_text(json.dumps(_footprint(flash_total=30_000, code=9_000, ram_total=8_000)))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(measure_doc(1.0)))
    b.write_text(json.dumps(measure_doc(1.2)))
    sa = load_side(str(a))
    assert sa.kind == "measure" and sa.configs[next(iter(sa.configs))].values["flash_bytes"] == 30_000
    assert run_gate(str(a), str(a)).passed
    res = run_gate(str(a), str(b))
    assert not res.passed and {c.metric for c in res.regressions} == {"latency_s", "energy_j", "energy_net_j"}

    store = BaselineStore(tmp_path / "baselines")
    store.save("main", sa)
    with pytest.raises(ReportError, match="exists"):
        store.save("main", sa)
    with pytest.raises(ReportError, match="baseline name"):
        store.save("../escape", sa)
    assert store.names() == ["main"]
    assert run_gate("main", str(a), baselines_dir=tmp_path / "baselines").passed
    assert not run_gate("main", str(b), baselines_dir=tmp_path / "baselines").passed


def test_run_side_identity_and_no_common_configuration(tmp_path: Path) -> None:
    run = from_run(build_run(tmp_path / "r", seed=1))
    assert {i.build for i in run.configs} == {"default"} and len(run.configs) == 12
    other = side("x", np.full(8, 0.05))
    with pytest.raises(ReportError, match="no configuration"):
        compare(run, other)


def test_delta_formats() -> None:
    assert format_delta("flash_bytes", -512.0, None, True) == "-512 B"
    assert format_delta("device_accuracy", -0.015625, None, True) == "-1.56 pp"
    assert format_delta("latency_s", 0.001, 0.02, False) == "+2.00 % (+1 ms)"
    assert GateConfig().alpha == 0.01


def test_baseline_cli_save_list_show_and_default_baseline(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)})

    build_run(tmp_path / "results" / "main", seed=1)
    build_run(tmp_path / "results" / "pr", seed=3, slowdown={"lenet/structure-99/uint8/sim-pico": 1.10})
    saved = cli("baseline", "save", "main", "results/main", "--note", "release 1.0")
    assert saved.returncode == 0 and "12 configuration(s), 10 measured" in saved.stdout, saved.stderr
    assert cli("baseline", "save", "main", "results/main").returncode != 0  # no silent overwrite
    assert cli("baseline", "save", "main", "results/main", "--force").returncode == 0
    listed = cli("baseline", "list")
    assert listed.stdout.startswith("main\t") and "12 configuration(s)" in listed.stdout
    shown = " ".join(cli("baseline", "show", "main").stdout.split())
    assert "arm-none-eabi-gcc 13.2.1" in shown and "N6705C" in shown and "harness git:" in shown
    doc = json.loads((tmp_path / "baselines" / "main.json").read_text())
    fw = doc["provenance"]["firmware"]["lenet/structure-99/uint8/sim-pico"]
    assert len(fw["sha256"]) == 64
    # one argument: the baseline comes from gate.toml
    assert cli("compare", "results/pr").returncode == 2  # no baseline configured yet
    (tmp_path / "gate.toml").write_text('[gate]\nbaseline = "main"\n')
    assert cli("compare", "results/pr").returncode == 1
    assert cli("compare", "results/main").returncode == 0
    missing = cli("baseline", "show", "nightly")
    assert missing.returncode == 2 and "no baseline 'nightly'" in missing.stderr and "Traceback" not in missing.stderr


def test_cycles_that_vary_are_tested_not_compared_exactly() -> None:
    """A real board's cycle counts jitter: +3 cycles of noise on 94k must not fail the gate."""
    rng = np.random.default_rng(11)
    lat = np.full(8, 0.050)
    b = list(94_261 + rng.integers(-3, 4, 8).astype(float))
    c = list(94_262 + rng.integers(-3, 4, 8).astype(float))
    res = compare(side("b", lat, cycles=b), side("c", lat, cycles=c))
    cyc = next(x for x in res.changes if x.metric == "cycles")
    assert res.passed and cyc.verdict == "unchanged" and "tested statistically" in cyc.detail
    slow = compare(side("b", lat, cycles=b), side("c", lat, cycles=[v * 1.2 for v in c]))
    assert not slow.passed and next(x for x in slow.changes if x.metric == "cycles").p_value is not None


def test_footprint_of_a_configuration_broken_on_both_sides_does_not_gate() -> None:
    lat = np.full(8, 0.050)
    b = side("b", np.array([]), flash=2_000_000, status="does-not-fit")
    c = side("c", np.array([]), flash=2_100_000, status="does-not-fit")
    res = compare(b, c)
    fl = next(x for x in res.changes if x.metric == "flash_bytes")
    assert res.passed and fl.verdict == "regression" and not fl.gating and "does-not-fit" in fl.detail
    now_broken = compare(side("b", lat, flash=900_000), c)
    assert {x.metric for x in now_broken.regressions} == {"status", "flash_bytes"}
