"""Parallel stations on one rig (instruments/sim-two.toml): two emulated boards, each with its own
pyOCD probe and serial link, on two channels of one simulated N6705A. Both stations run at once;
their measurement windows on the shared mainframe never overlap; a failure on one station is
recorded for that station only, and a resume with --retry-failed completes it without touching
the other station's measurements."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from harness.campaign.arbiter import MonitorLock, monitor_locks, overlapping
from harness.campaign.prepare import FAULT_ENV
from harness.campaign.runner import CampaignRunner
from harness.campaign.stations import Snapshot, StoreProxy, apply
from harness.config import load_campaign, load_rig
from harness.store import ResultStore

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "tests" / "data" / "two-station-campaign.toml"
FAULTY = "ll/s50/uint8/sim-nano33ble"


def test_one_mainframe_one_lock_separate_monitors_separate_locks() -> None:
    rig = load_rig("sim-two")
    locks = monitor_locks(rig, ["sim-m4", "sim-nano33ble"])
    assert locks["sim-m4"].shared is locks["sim-nano33ble"].shared  # N6705A: one trigger per mainframe
    ppk = rig.model_copy(update={"power_analyzer": rig.power_analyzer.model_copy(update={"kind": "ppk2"})})
    per_board = monitor_locks(ppk, ["sim-m4", "sim-nano33ble"])  # a PPK2 per board: nothing shared
    assert per_board["sim-m4"].shared is not per_board["sim-nano33ble"].shared


def test_monitor_lock_is_reentrant_and_records_windows() -> None:
    lock = MonitorLock("n6705a:x")
    with lock.held("a"), lock.held("a"):  # heal() inside a window takes it again
        pass
    with lock.held("b"):
        pass
    assert [w[0] for w in lock.windows] == ["a", "b"]
    assert overlapping(lock.windows) == []
    assert overlapping([("a", 0.0, 2.0), ("b", 1.0, 3.0)]) != []


def test_store_proxy_events_apply_to_the_real_store(tmp_path: Path) -> None:
    events: list = []
    with ResultStore(tmp_path) as store:
        store.start_run("t", "")
        store.upsert_config("c", model_id="m", board="b", status="pending")
        proxy = StoreProxy(tmp_path, {"c": Snapshot()}, events.append)
        proxy.upsert_config("c", device_accuracy=0.5)
        proxy.add_measurement("c", 0, ignore_duplicate=True, latency_s=0.001)
        proxy.set_status("c", "measured")
        assert proxy.get_config("c")["device_accuracy"] == 0.5 and proxy.completed_repetitions("c") == {0}
        assert store.completed_repetitions("c") == set()  # nothing written until the events are applied
        for ev in events:
            apply(store, ev)
        assert store.completed_repetitions("c") == {0}
        assert store.statuses()["c"] == "measured"
        with pytest.raises(ValueError):
            apply(store, ("close", (), {}))


def run(run_dir: Path, cache: Path, **kw) -> CampaignRunner:
    campaign = load_campaign(CAMPAIGN)
    runner = CampaignRunner(campaign, load_rig(campaign.rig), run_dir, cache_dir=cache, **kw)
    with ResultStore(run_dir) as store:
        store.start_run(campaign.name, CAMPAIGN.read_text())
        runner.run(store)
        store.end_run("completed")
    return runner


def rows(db: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT config_id, repetition, measured_at FROM measurements WHERE NOT warmup").fetchall()


@pytest.mark.slow
def test_two_stations_run_at_once_with_serialised_windows_and_per_station_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    monkeypatch.setenv(FAULT_ENV, f"fault:{FAULTY}")  # real firmware that faults, on one station only
    runner = run(run_dir, cache)
    spans = runner.station_spans
    assert set(spans) == {"sim-m4", "sim-nano33ble"}
    (a0, a1), (b0, b1) = spans["sim-m4"], spans["sim-nano33ble"]
    assert a0 < b1 and b0 < a1, f"the stations did not run at the same time: {spans}"
    lock = runner._bench.stations["sim-m4"].monitor_lock.shared
    assert lock is runner._bench.stations["sim-nano33ble"].monitor_lock.shared
    assert {w[0] for w in lock.windows} == {"sim-m4", "sim-nano33ble"}
    assert overlapping(lock.windows) == [], "two measurement windows on one mainframe at once"

    db = run_dir / "results.sqlite"
    with sqlite3.connect(db) as con:
        status = dict(con.execute("SELECT config_id, status FROM configurations").fetchall())
        reason = con.execute("SELECT failure_reason FROM configurations WHERE config_id = ?", (FAULTY,)).fetchone()
        probes = dict(con.execute("SELECT board, probe_id FROM provenance").fetchall())
    assert status.pop(FAULTY) == "failed" and reason[0]
    assert set(status.values()) == {"measured"}
    assert probes == {"sim-m4": "sim:sim-m4", "sim-nano33ble": "sim:sim-nano33ble"}
    first = rows(db)

    monkeypatch.delenv(FAULT_ENV)
    os.environ.pop(FAULT_ENV, None)
    run(run_dir, cache, retry_failed=True)
    again = rows(db)
    reps = load_campaign(CAMPAIGN).repetitions
    configs = {p.config_id for p in runner.points}
    assert len(configs) == 4
    assert sorted((c, r) for c, r, _ in again) == sorted((c, r) for c in configs for r in range(reps)), \
        "each (configuration, repetition) exactly once"
    assert set(first) <= set(again), "the other station's measurements were kept untouched"
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT status FROM configurations WHERE config_id = ?", (FAULTY,)).fetchone()[0] == "measured"
