"""`harness run` with each power monitor a rig file can name, on the simulated rig: the N6705A,
a PPK2 and a Joulescope (their simulated counterparts fed by the emulated board), and no monitor
at all (a latency-only rig). Each repetition is checked against the emulated board's own ground
truth (its GPIO edges and current waveform)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "tests" / "data" / "monitor-campaign.toml"
REPS = 3
BOARD = "sim-m4"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared by the runs so they share the compression and build caches."""
    return tmp_path_factory.mktemp("monitors")


def _run(workdir: Path, rig: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[tuple[float, float]]]:
    """Run the campaign in-process on ``rig``; returns the run folder and the ground truth
    (latency, energy) of the measured repetitions, the board's last REPS pulses."""
    from harness.campaign.session import run_campaign
    from harness.config import load_board
    from harness.sim.rig import SimRig

    monkeypatch.chdir(workdir)
    monkeypatch.setenv("HARNESS_HOME", str(ROOT))
    run_dir = workdir / rig
    with SimRig([BOARD], analyzer=False) as parts:  # the bench reuses this board: its bus is the truth
        summary = run_campaign(CAMPAIGN, rig=rig, run_dir=run_dir)
        bus = parts[BOARD].bus
        edges = bus.edges(0.0)
    assert summary.measured == summary.total == 1, summary
    rises = [e.time_s for e in edges if e.level == 1][-REPS:]
    falls = [e.time_s for e in edges if e.level == 0][-REPS:]
    v = load_board(BOARD).supply.nominal_v
    truth = [(t1 - t0, v * float(bus.mean_current(np.array([t0]), np.array([t1]))[0]) * (t1 - t0))
             for t0, t1 in zip(rises, falls, strict=True)]
    return run_dir, truth


def _rows(run_dir: Path) -> list[dict]:
    with sqlite3.connect(run_dir / "results.sqlite") as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM measurements ORDER BY repetition")]


@pytest.mark.parametrize("rig", ["sim-ppk2", "sim-joulescope"])
def test_run_with_a_streaming_monitor(rig: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, truth = _run(workdir, rig, monkeypatch)
    rows = _rows(run_dir)
    assert len(rows) == REPS
    for row, (lat, energy) in zip(rows, truth, strict=True):
        assert row["timing_source"] == "digital-input"
        assert abs(row["latency_s"] - row["cycle_latency_s"]) <= row["sample_interval_s"]
        assert abs(row["latency_s"] - lat) <= row["sample_interval_s"]
        assert abs(row["energy_j"] / energy - 1) <= 0.01
    man = json.loads((run_dir / "report" / "provenance.json").read_text())
    assert man["simulated"] is True
    assert any(i["driver"] == rig.removeprefix("sim-") and i["simulated"] for i in man["instrument_parts"])
    assert "Simulated rig (estimates)" in (run_dir / "report" / "table3.md").read_text()


def test_run_on_a_latency_only_rig(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, truth = _run(workdir, "sim-latency", monkeypatch)
    rows = _rows(run_dir)
    assert len(rows) == REPS
    for row, (lat, _) in zip(rows, truth, strict=True):
        assert row["timing_source"] == "cycle-counter"
        assert row["latency_s"] == pytest.approx(lat, rel=1e-3)
        assert row["energy_j"] is None or math.isnan(row["energy_j"])
    table = (run_dir / "report" / "table3.md").read_text()
    row = next(ln for ln in table.splitlines() if BOARD in ln)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[-3:] == ["n/a", "n/a", "n/a"] or cells.count("n/a") >= 2, row
