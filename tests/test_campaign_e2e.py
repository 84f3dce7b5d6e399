"""The main job end to end on the simulated rig: real training, real arm-none-eabi-gcc builds,
real firmware on the emulated board, flashed through pyOCD, measured through pyvisa-py and the
simulated N6705A. Covers resume after SIGKILL, a hanging firmware, and the report's numbers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny-campaign.toml"
REPS = 4
CONFIGS = ["ll/none/uint8/sim-m4", "ll/s50/uint8/sim-m4"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One working folder for the module so the runs share the compression and build caches."""
    return tmp_path_factory.mktemp("campaign")


def harness(workdir: Path, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    full_env = {**os.environ, "HARNESS_HOME": str(ROOT), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=workdir, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def measurement_rows(db: Path) -> list[tuple[str, int]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT config_id, repetition FROM measurements WHERE NOT warmup").fetchall()
    except sqlite3.OperationalError:
        return []  # schema not created yet


def test_killed_campaign_resumes_without_repeating_or_losing(workdir: Path) -> None:
    run_dir = workdir / "results" / "resume"
    db = run_dir / "results.sqlite"
    proc = harness(workdir, "run", str(TINY), "--run-dir", str(run_dir), "--no-report")
    deadline = time.monotonic() + 600
    while len(measurement_rows(db)) < 2:  # kill part-way: some measurements taken, not all
        assert proc.poll() is None, f"campaign ended before it could be killed:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "no measurements within 10 minutes"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = measurement_rows(db)
    assert 2 <= len(before) < len(CONFIGS) * REPS

    again = harness(workdir, "run", str(TINY), "--run-dir", str(run_dir), "--resume")
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out

    rows = measurement_rows(db)
    assert sorted(rows) == sorted({(c, r) for c in CONFIGS for r in range(REPS)}), "each (config, rep) exactly once"
    assert set(before) <= set(rows), "measurements taken before the kill were kept"

    with sqlite3.connect(db) as con:
        status = dict(con.execute("SELECT config_id, status FROM configurations").fetchall())
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        raw = pd.read_sql_query("SELECT config_id, latency_s, power_w, energy_j, cycles FROM measurements", con)
        checks = pd.read_sql_query("SELECT config_id, device_accuracy, host_agreement FROM configurations", con)
        idn = con.execute("SELECT config_id, instrument_idn, firmware_sha256 FROM provenance").fetchall()
    assert {c for c, _, _ in idn} == set(CONFIGS)
    assert all("N6705" in (i or "") and len(sha) == 64 for _, i, sha in idn), idn
    assert set(status.values()) == {"measured"}
    assert (checks["host_agreement"] == 1.0).all(), "device outputs must match the host reference"

    # Every row's raw record was kept, and its energy can be re-derived from the samples.
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT trace_path, energy_j, latency_s, window_start_s FROM measurements").fetchall()
    for trace, energy, latency, start in rows:
        with np.load(run_dir / trace) as npz:
            p = npz["current_a"].astype(float) * npz["voltage_v"].astype(float)
            meta = json.loads(str(npz["__meta__"]))
        t = meta["t_start_s"] + meta["interval_s"] * (np.arange(len(p)) + 0.5)  # sample centres
        inside = (t >= start) & (t < start + latency)
        assert float(p[inside].sum() * meta["interval_s"]) == pytest.approx(energy, rel=0.01)

    # The pruned model is faster than the unpruned one on the same board.
    mean_lat = raw.groupby("config_id")["latency_s"].mean()
    assert mean_lat["ll/s50/uint8/sim-m4"] < mean_lat["ll/none/uint8/sim-m4"]

    # GPIO-timed latency agrees with the firmware's own cycle count (sim-m4: 100 MHz).
    cyc_lat = raw["cycles"] / 100e6
    assert np.allclose(raw["latency_s"], cyc_lat, rtol=0.01)

    # The report's mean ± std are those of the raw rows (sample std, ddof=1).
    table = pd.read_csv(run_dir / "report" / "table3.csv").set_index("config_id")
    scale = {"latency_s": ("latency_ms", 1e3), "power_w": ("power_mw", 1e3), "energy_j": ("energy_mws", 1e3)}
    for cid, grp in raw.groupby("config_id"):
        for col, (name, k) in scale.items():
            assert table.loc[cid, f"{name}_mean"] == pytest.approx(grp[col].mean() * k, rel=1e-9)
            assert table.loc[cid, f"{name}_std"] == pytest.approx(grp[col].std(ddof=1) * k, rel=1e-6, abs=1e-12)
        assert table.loc[cid, "n"] == REPS


def test_hanging_firmware_fails_after_retries_and_campaign_goes_on(workdir: Path) -> None:
    run_dir = workdir / "results" / "hang"
    proc = harness(workdir, "run", str(TINY), "--run-dir", str(run_dir), "--no-report",
                   env={"HARNESS_FAULT_INJECT": "hang:ll/s50/*"})
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 1, out  # a failed configuration makes the run exit non-zero
    with sqlite3.connect(run_dir / "results.sqlite") as con:
        status = dict(con.execute("SELECT config_id, status FROM configurations").fetchall())
        reason = con.execute("SELECT failure_reason FROM configurations WHERE config_id = ?",
                             ("ll/s50/uint8/sim-m4",)).fetchone()[0]
        attempts = con.execute("SELECT COUNT(*) FROM events WHERE config_id = ? AND message LIKE 'attempt %failed%'",
                               ("ll/s50/uint8/sim-m4",)).fetchone()[0]
        n_ok = con.execute("SELECT COUNT(*) FROM measurements WHERE config_id = ?", (CONFIGS[0],)).fetchone()[0]
    assert status == {CONFIGS[0]: "measured", "ll/s50/uint8/sim-m4": "failed"}
    assert "Timeout" in reason or "timed out" in reason.lower(), reason
    assert attempts == 2  # max_retries = 1: two attempts, then failed
    assert n_ok == REPS


def test_ctrl_c_switches_outputs_off_and_keeps_measurements(workdir: Path) -> None:
    run_dir = workdir / "results" / "interrupt"
    db = run_dir / "results.sqlite"
    proc = harness(workdir, "run", str(TINY), "--run-dir", str(run_dir), "--no-report")
    deadline = time.monotonic() + 600
    while len(measurement_rows(db)) < 1:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    log = (run_dir / "campaign.log").read_text()
    assert "analyzer channel 3 output off" in log  # sim-m4 is on channel 3 of instruments/sim.toml
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT end_status FROM runs ORDER BY session_id DESC").fetchone()[0] == "interrupted"
    assert len(measurement_rows(db)) >= 1
