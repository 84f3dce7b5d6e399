"""`harness sim calibrate`: CoreMark on one core and one seed model through the real pipeline
(gcc build, emulator, GPIO window), compared with the published figures; the report and the CLI's
error handling; the power fit recovers known coefficients."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sim import calibrate as cal

needs_gcc = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None and os.environ.get("CI") != "true",
    reason="needs arm-none-eabi-gcc (required in CI)",
)


@needs_gcc
def test_calibration_of_one_core_and_one_seed_model(tmp_path: Path) -> None:
    rows, fits = cal.run_calibration(cores=["cortex-m4"], seed_models=["lenet-light"], paper=False, work=tmp_path)
    by_name = {r.name: r for r in rows}
    coremark = by_name["CoreMark/MHz cortex-m4"]
    assert coremark.published == 3.40 and coremark.board == "sim-m4"
    assert coremark.ok, f"CoreMark/MHz {coremark.simulated:.2f} is {coremark.error:+.1%} off Arm's 3.40"
    seed = by_name["lenet-light unpruned, CMSIS-NN s8 kernels"]
    assert seed.unit == "ms" and seed.published == 30.0
    assert seed.ok, f"LeNet-Light {seed.simulated:.1f} ms is {seed.error:+.1%} off the seed's 30 ms"
    # the report is the table plus its provenance
    text = cal.render_report(rows, fits, 1.0)
    assert "| coremark | CoreMark/MHz cortex-m4 | sim-m4 |" in text
    assert "git commit" in text and "ESTIMATE" in text


def test_power_fit_recovers_known_coefficients() -> None:
    rows = [r for r in cal.PAPER_ROWS if r.board == "sim-pico"]
    rng = __import__("numpy").random.default_rng(1)
    base, mul, flash = 0.015, 0.011, 0.020
    runs, made = [], []
    for r in rows:
        mix = {"mem": 0.0, "fp": 0.0, "mul": float(rng.uniform(0, 0.2)), "flash_reads": float(rng.uniform(0, 0.2))}
        mw = (base + mul * mix["mul"] + flash * mix["flash_reads"]) * 5.0 * 1e3
        made.append(cal.PaperRow(r.board, r.numeric, r.pruning, r.level, r.sparsity, r.ms, mw, r.shape))
        runs.append(cal.ModelRun(r.board, 1, 1.0, 0.0, 1000, mix))
    (fit,) = cal.fit_power(made, runs)
    assert fit.base_a == pytest.approx(base, rel=1e-3)
    assert fit.coefficients["mul"] == pytest.approx(mul, rel=1e-3)
    assert fit.coefficients["flash_reads"] == pytest.approx(flash, rel=1e-3)
    assert fit.rms_rel < 1e-6


def test_cli_rejects_unknown_core() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "sim", "calibrate", "--core", "cortex-m33", "--no-paper"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0
    assert "cortex-m33" in res.stderr + res.stdout and "cortex-m4" in res.stderr + res.stdout
    assert "Traceback" not in res.stderr
