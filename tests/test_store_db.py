"""The results store: schema, upserts, status log, UNIQUE repetitions, provenance, traces and
re-opening, checked against the SQLite file itself (sqlite3 directly, not through the store)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.store import SCHEMA_VERSION, DuplicateMeasurement, ResultStore, StoreError, read_trace

CID = "lenet/structure-99/uint8/sim-pico"


def _raw(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_pragmas_and_schema_version(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        assert s.path == tmp_path / "results.sqlite"
        assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert s.schema_version() == SCHEMA_VERSION
    tables = {r[0] for r in _raw(tmp_path / "results.sqlite", "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"schema_version", "runs", "configurations", "provenance", "measurements", "events"} <= tables


def test_start_run_records_campaign_and_refuses_changed_resume(tmp_path: Path) -> None:
    toml = 'name = "lenet-digits"\nrepetitions = 8\n'
    with ResultStore(tmp_path) as s:
        sid = s.start_run("lenet-digits", toml)
        s.end_run("completed")
    row = _raw(tmp_path / "results.sqlite", "SELECT session_id, campaign_toml, campaign_sha256, ended_at, harness_version FROM runs")[0]
    assert row[0] == sid and row[1] == toml and len(row[2]) == 64 and row[3] is not None and row[4]
    with ResultStore(tmp_path) as s:
        assert s.start_run("lenet-digits", toml) == sid + 1  # resume = new session
        with pytest.raises(StoreError, match="campaign file changed"):
            s.start_run("lenet-digits", toml + "warmup = 3\n")


def test_upsert_keeps_unspecified_fields_and_validates(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.upsert_config(CID, model_id="lenet", board="sim-pico", flash_bytes=np.int64(40_000), fits=np.bool_(True))
        s.upsert_config(CID, ram_bytes=12_000, extra={"note": "a"})
        s.upsert_config(CID, extra={"other": 2})
        cfg = s.get_config(CID)
        assert cfg is not None
        assert (cfg["model_id"], cfg["flash_bytes"], cfg["ram_bytes"], cfg["fits"]) == ("lenet", 40_000, 12_000, 1)
        assert '"note": "a"' in cfg["extra_json"] and '"other": 2' in cfg["extra_json"]
        with pytest.raises(ValueError, match="unknown configuration field"):
            s.upsert_config(CID, flash_byte=1)
        with pytest.raises(ValueError, match="status"):
            s.upsert_config(CID, status="done")


def test_set_status_logs_event(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.set_status(CID, "built")
        s.set_status(CID, "failed", "flash verify mismatch at 0x10000100")
        assert s.get_config(CID)["failure_reason"] == "flash verify mismatch at 0x10000100"  # type: ignore[index]
        s.set_status(CID, "measured")
        assert s.get_config(CID)["failure_reason"] is None  # type: ignore[index]
        s.log_event(CID, "measure", "retry 1/2: serial timeout", level="warning")
        s.set_status("other/none/float32/pico", "does-not-fit", "flash 3 MiB > 2 MiB")
        assert s.statuses() == {CID: "measured", "other/none/float32/pico": "does-not-fit"}
        with pytest.raises(ValueError, match="level"):
            s.log_event(CID, "measure", "x", level="fatal")
        ev = s.events_df(CID)
    ev = ev[ev["config_id"] == CID]
    assert list(ev["message"]) == ["built", "failed: flash verify mismatch at 0x10000100", "measured",
                                   "retry 1/2: serial timeout"]
    assert list(ev["level"]) == ["info", "error", "info", "warning"]


def test_unique_repetition_enforced(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.upsert_config(CID)
        assert s.add_measurement(CID, 0, latency_s=0.01)
        with pytest.raises(DuplicateMeasurement):
            s.add_measurement(CID, 0, latency_s=0.02)
        assert s.add_measurement(CID, 0, latency_s=0.03, ignore_duplicate=True) is False
        s.add_measurement(CID, 2, latency_s=0.01)
        assert s.completed_repetitions(CID) == {0, 2}
        with pytest.raises(StoreError, match="unknown configuration"):
            s.add_measurement("nope/x/float32/pico", 0, latency_s=1.0)
    # the first value survived; the duplicates changed nothing
    assert _raw(tmp_path / "results.sqlite", "SELECT repetition, latency_s FROM measurements ORDER BY repetition") == [
        (0, 0.01), (2, 0.01)]
    # the constraint lives in the file, not only in the Python API
    con = sqlite3.connect(tmp_path / "results.sqlite")
    with pytest.raises(sqlite3.IntegrityError):
        con.execute("INSERT INTO measurements (config_id, repetition, measured_at) VALUES (?, 0, 'x')", (CID,))
    con.close()


def test_warmups_do_not_count_as_completed(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.upsert_config(CID)
        s.add_measurement(CID, 0, latency_s=0.5, warmup=True)
        s.add_measurement(CID, 1, latency_s=0.1, warmup_count=1)
        assert s.completed_repetitions(CID) == {1}
        assert list(s.measurements_df()["repetition"]) == [1]
        assert list(s.measurements_df(include_warmup=True)["repetition"]) == [0, 1]


def test_trace_roundtrip_and_relative_path(tmp_path: Path) -> None:
    t = np.arange(1000) * 20.48e-6
    cur = np.sin(t) * 1e-3 + 0.02
    with ResultStore(tmp_path) as s:
        s.upsert_config(CID)
        p = s.write_trace(CID, 3, {"t_s": t, "current_a": cur}, {"sample_interval_s": 20.48e-6})
        s.add_measurement(CID, 3, trace_path=p, sample_interval_s=20.48e-6)
    assert p.is_file() and p.parent.parent == tmp_path / "traces"
    assert not list(p.parent.glob("*.tmp"))
    stored = _raw(tmp_path / "results.sqlite", "SELECT trace_path FROM measurements")[0][0]
    assert not Path(stored).is_absolute()
    arrays, meta = read_trace(tmp_path / stored)
    np.testing.assert_array_equal(arrays["current_a"], cur)
    assert meta == {"config_id": CID, "repetition": 3, "sample_interval_s": 20.48e-6}


def test_provenance_rows(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.start_run("c", "x")
        s.upsert_config(CID)
        s.add_provenance(CID, firmware_sha256="ab" * 32, toolchain="arm-none-eabi-gcc 13.2",
                         instrument_idn=["Agilent Technologies,N6705B,MY50001897,D.01.08"],
                         timing_sources=["gpio", "dwt"])
        df = s.provenance_df()
    assert df.loc[0, "firmware_sha256"] == "ab" * 32 and df.loc[0, "session_id"] == 1
    assert "N6705B" in df.loc[0, "instrument_idn"]
    with ResultStore(tmp_path) as s, pytest.raises(ValueError):
        s.add_provenance(CID, idn="x")


def test_reopen_many_times_keeps_data(tmp_path: Path) -> None:
    for i in range(5):
        with ResultStore(tmp_path) as s:
            s.upsert_config(CID)
            s.add_measurement(CID, i, latency_s=0.1 * (i + 1), energy_j=1e-3 * i)
            assert s.completed_repetitions(CID) == set(range(i + 1))
            assert s.integrity_check() == "ok"
    rows = _raw(tmp_path / "results.sqlite", "SELECT repetition, latency_s FROM measurements ORDER BY repetition")
    assert rows == [(i, pytest.approx(0.1 * (i + 1))) for i in range(5)]
    assert _raw(tmp_path / "results.sqlite", "SELECT COUNT(*) FROM schema_version") == [(1,)]


def test_missing_store_and_newer_schema(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no results store"):
        ResultStore(tmp_path / "nothing", create=False)
    with ResultStore(tmp_path):
        pass
    con = sqlite3.connect(tmp_path / "results.sqlite")
    con.execute("INSERT INTO schema_version VALUES (99, 'later')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        ResultStore(tmp_path)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "results.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a readable results store"):
        ResultStore(tmp_path)


def test_reader_sees_committed_rows_while_writer_is_open(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as writer:
        writer.upsert_config(CID)
        writer.add_measurement(CID, 0, latency_s=0.1)
        with ResultStore(tmp_path, create=False) as reader:  # e.g. the live display
            assert reader.completed_repetitions(CID) == {0}
            writer.add_measurement(CID, 1, latency_s=0.1)
            assert reader.completed_repetitions(CID) == {0, 1}


def test_instrument_measurement_dataclass_stores_directly(tmp_path: Path) -> None:
    """Contract with harness.instruments: asdict(InferenceMeasurement) minus 'index' is accepted."""
    from dataclasses import asdict

    from harness.instruments import energy

    m = energy.InferenceMeasurement(
        index=0, latency_s=0.0123, energy_j=1.2e-3, power_w=0.0976, baseline_power_w=0.012, energy_net_j=1.05e-3,
        power_net_w=0.0856, sample_interval_s=20.48e-6, timing_source="gpio",
        latency_by_source_s={"gpio": 0.0123, "cycles": 0.01231}, cross_check_deviation=8e-4, cross_check_ok=True,
        cycles=787_200,
    )
    fields = {k: v for k, v in asdict(m).items() if k != "index"}
    with ResultStore(tmp_path) as s:
        s.upsert_config(CID)
        s.add_measurement(CID, m.index, **fields)
    row = _raw(tmp_path / "results.sqlite",
               "SELECT latency_s, power_net_w, cross_check_ok, latency_by_source_s, cycles FROM measurements")[0]
    assert row[:3] == (0.0123, 0.0856, 1) and row[4] == 787_200
    assert '"cycles": 0.01231' in row[3]


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    """Using a store after close() says so (a StoreError), instead of an AttributeError on None."""
    s = ResultStore(tmp_path)
    s.close()
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.schema_version()
