"""Crash safety: a real writer process is SIGKILLed part-way through appending; the store must
keep every committed repetition, no partial row or partial trace, pass integrity_check and
accept further appends (what resuming a campaign after a crash relies on)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from harness.store import ResultStore, read_trace

CID = "lenet/element-97/float32/sim-nano33ble"
ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from harness.store import ResultStore
    cid = sys.argv[2]
    with ResultStore(sys.argv[1]) as s:
        s.start_run("crash", "name = 'crash'")
        s.upsert_config(cid, model_id="lenet", board="sim-nano33ble", status="built")
        done = s.completed_repetitions(cid)
        rep = max(done) + 1 if done else 0
        while True:
            t = np.arange(20000) * 1e-5
            p = s.write_trace(cid, rep, {"current_a": np.full(t.size, 1e-3 * (rep + 1)), "t_s": t}, {"rep": rep})
            s.add_measurement(cid, rep, latency_s=1e-3 * (rep + 1), energy_j=2e-6 * (rep + 1),
                              power_w=2e-3, cycles=1000 * rep, timing_source="gpio", trace_path=p)
            print(rep, flush=True)   # printed only after the commit returned
            rep += 1
    """
)


def _expected_ok(row: sqlite3.Row) -> bool:
    r = row["repetition"]
    return (
        row["latency_s"] == 1e-3 * (r + 1)
        and row["energy_j"] == 2e-6 * (r + 1)
        and row["power_w"] == 2e-3
        and row["cycles"] == 1000 * r
        and row["timing_source"] == "gpio"
        and row["trace_path"] is not None
    )


def _kill_after(run_dir: Path, n_committed: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), CID], stdout=subprocess.PIPE, text=True, env=env)
    last = -1
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while last < n_committed - 1 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    # lines the writer printed before dying but we had not read yet
    for line in proc.stdout.read().split():
        last = int(line)
    return last


def _check(run_dir: Path, last_printed: int) -> list[int]:
    db = run_dir / "results.sqlite"
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT * FROM measurements ORDER BY repetition").fetchall()
    finally:
        con.close()
    reps = [r["repetition"] for r in rows]
    # every committed repetition is there, contiguous, at most one committed-but-unprinted extra
    assert reps == list(range(len(reps)))
    assert last_printed + 1 <= len(reps) <= last_printed + 2
    assert all(_expected_ok(r) for r in rows), "a row is partial or wrong"
    for r in rows:  # every row points to a complete trace
        arrays, meta = read_trace(run_dir / r["trace_path"])
        assert meta["rep"] == r["repetition"]
        np.testing.assert_allclose(arrays["current_a"], 1e-3 * (r["repetition"] + 1))
    # traces without a row may exist (written just before the kill) but are complete files too
    for p in (run_dir / "traces").rglob("*.npz"):
        read_trace(p)
    return reps


def test_sigkill_between_writes_keeps_committed_rows_and_resumes(tmp_path: Path) -> None:
    last = _kill_after(tmp_path, 25)
    reps = _check(tmp_path, last)
    # a second writer resumes from the stored repetitions and is killed again
    last2 = _kill_after(tmp_path, len(reps) + 15)
    reps2 = _check(tmp_path, last2)
    assert reps2[: len(reps)] == reps and len(reps2) >= len(reps) + 15
    # and the parent process can still append and read everything back
    with ResultStore(tmp_path) as s:
        n = len(reps2)
        s.add_measurement(CID, n, latency_s=1e-3 * (n + 1))
        assert s.completed_repetitions(CID) == set(range(n + 1))
        assert s.integrity_check() == "ok"
        assert len(s.runs_df()) == 2  # both killed sessions were recorded
