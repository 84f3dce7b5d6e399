"""A full disk and a read-only folder, for real: a small tmpfs is mounted (the tests run as root
here and in CI), filled by the real store or a real `harness run`, then grown or remounted
read-only. The user gets one message naming the path and what to do, never a traceback; the
store stays intact and `--resume` finishes the campaign once there is space."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.store import ResultStore, StorageError

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "tests" / "data" / "tiny-campaign.toml"


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs; tests resize or remount it with _mount('-o', 'remount,...', path)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    res = _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk))
    if res.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to mount a tmpfs for the disk-full tests: {res.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _fill(store: ResultStore, cid: str) -> tuple[list[int], StorageError]:
    committed = []
    rng = np.random.default_rng(0)
    for rep in range(10_000):
        try:
            trace = store.write_trace(cid, rep, {"current_a": rng.random(4000).astype(np.float32)})
            store.add_measurement(cid, rep, latency_s=1e-3, energy_j=1e-6, trace_path=trace)
        except StorageError as exc:
            return committed, exc
        committed.append(rep)
    raise AssertionError("the 256 KiB disk never filled")


def test_full_disk_is_reported_and_the_store_continues_after(small_disk: Path) -> None:
    run = small_disk / "run"
    cid = "m/c/uint8/sim-m4"
    with ResultStore(run) as store:
        store.start_run("full", "name = 'full'")
        store.upsert_config(cid, model_id="m", board="sim-m4", status="built")
        committed, exc = _fill(store, cid)
    assert committed, "nothing fit before the disk was full"
    msg = str(exc)
    assert str(run) in msg and ("no space left" in msg or "disk is full" in msg) and "--resume" in msg
    assert _mount("-o", "remount,size=8m", str(small_disk)).returncode == 0
    with ResultStore(run) as store:
        assert store.integrity_check() == "ok"
        assert store.completed_repetitions(cid) == set(committed)  # every committed row, no partial one
        nxt = max(committed) + 1
        store.add_measurement(cid, nxt, latency_s=1e-3, energy_j=1e-6)
        assert nxt in store.completed_repetitions(cid)
    leftovers = [p for p in (run / "traces").rglob("*.tmp")]
    assert not leftovers  # no half-written trace under any name


def test_read_only_run_folder_is_a_message(small_disk: Path, tmp_path: Path) -> None:
    (small_disk / "run").mkdir()
    assert _mount("-o", "remount,ro", str(small_disk)).returncode == 0
    env = {**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state"), "COLUMNS": "300"}
    for target in (small_disk / "run", small_disk / "new-run"):
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(CAMPAIGN), "--run-dir", str(target),
                               "--no-report"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
        out = proc.stdout + proc.stderr
        assert proc.returncode == StorageError.exit_code, out
        assert "Traceback" not in out
        assert str(target) in out and "Read-only file system" in out and "writable" in out


@pytest.mark.slow
def test_harness_run_on_a_full_disk_then_resume(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    # the tiny campaign's run folder takes ~1.7 MB (firmware, artifacts, traces, database)
    res = _mount("-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk))
    if res.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must be able to mount a tmpfs: {res.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        env = {**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state"), "COLUMNS": "300"}
        run = disk / "run"
        cmd = [sys.executable, "-m", "harness.cli", "run", str(CAMPAIGN), "--run-dir", str(run), "--no-report"]
        first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
        out = first.stdout + first.stderr
        assert first.returncode == StorageError.exit_code, out
        assert "Traceback" not in out and str(run) in " ".join(out.split())
        assert _mount("-o", "remount,size=64m", str(disk)).returncode == 0
        with sqlite3.connect(run / "results.sqlite") as con:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert con.execute("SELECT COUNT(*) FROM configurations WHERE status = 'failed'").fetchone()[0] == 0
        second = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
        assert second.returncode == 0, second.stdout + second.stderr
        with sqlite3.connect(run / "results.sqlite") as con:
            statuses = dict(con.execute("SELECT config_id, status FROM configurations").fetchall())
            reps = con.execute("SELECT config_id, COUNT(*), COUNT(DISTINCT repetition) FROM measurements"
                               " WHERE warmup = 0 GROUP BY config_id").fetchall()
        assert set(statuses.values()) == {"measured"} and len(statuses) == 2
        assert all(n == d == 4 for _, n, d in reps) and len(reps) == 2
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_full_or_read_only_disk_is_recognised_second_hand(small_disk: Path) -> None:
    from harness.store.storage import folder_unwritable, from_tool_output

    assert folder_unwritable(small_disk) is None
    with open(small_disk / "filler", "wb") as fh, pytest.raises(OSError):
        fh.write(b"\0" * (1 << 20))  # really fill the tmpfs
    full = folder_unwritable(small_disk)
    assert full is not None and "disk is full" in str(full) and "--resume" in str(full)
    # a linker that could not write its output says so only in its message
    ld = from_tool_output("ld: final link failed: No space left on device\ncollect2: error", small_disk)
    assert ld is not None and str(small_disk) in str(ld)
    assert from_tool_output("ld: undefined reference to `model_run'", small_disk) is None
    (small_disk / "filler").unlink()
    assert _mount("-o", "remount,ro", str(small_disk)).returncode == 0
    ro = folder_unwritable(small_disk)
    assert ro is not None and "Read-only" in str(ro)
