"""One `harness run` per run folder: the second real process is refused with the holder's pid,
a SIGKILLed holder never blocks the next run, and simulated boards keep their flash per run."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.campaign.lock import LOCK_NAME, RunLock, RunLocked, read_holder
from harness.sim.flashstore import FlashStore, run_state_dir, scoped_to_run

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "tests" / "data" / "tiny-campaign.toml"


def _harness(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_holder(run_dir: Path, pid: int, proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = read_holder(run_dir)
        if holder and holder.get("pid") == pid and "released" not in holder:
            return holder
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.1)
    raise AssertionError(f"pid {pid} never took the lock of {run_dir}")


@pytest.mark.slow
def test_second_harness_run_on_one_folder_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state"), "COLUMNS": "300"}
    run_dir = tmp_path / "run"
    first = _harness("run", str(CAMPAIGN), "--run-dir", str(run_dir), "--no-report", cwd=tmp_path, env=env)
    try:
        holder = _wait_for_holder(run_dir, first.pid, first)
        assert holder["host"] == socket.gethostname()
        second = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(CAMPAIGN), "--run-dir", str(run_dir),
                                 "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        out = second.stdout + second.stderr
        assert second.returncode == RunLocked.exit_code, out
        assert "Traceback" not in out
        assert "locked" in out and f"pid {first.pid}" in out and str(run_dir) in out
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    # the OS dropped the dead holder's lock: the next run takes over (and says so in its log)
    third = _harness("run", str(CAMPAIGN), "--run-dir", str(run_dir), "--resume", "--no-report", cwd=tmp_path, env=env)
    log_path = run_dir / "campaign.log"
    try:
        _wait_for_holder(run_dir, third.pid, third)
        deadline = time.monotonic() + 120
        while "stale lock" not in (log_path.read_text() if log_path.exists() else ""):
            assert third.poll() is None and time.monotonic() < deadline, "the takeover was never logged"
            time.sleep(0.1)
    finally:
        third.send_signal(signal.SIGTERM)
        out3, _ = third.communicate(timeout=60)  # SIGTERM stops the run at its next safe point
    log = log_path.read_text()
    assert "stale lock of `harness run" in log and f"pid {first.pid}" in log
    if third.returncode != 0:  # 0 only if it finished before the signal came
        assert third.returncode == 130 and "interrupted" in out3 and "Traceback" not in out3, out3


def test_lock_refuses_a_second_holder_and_releases(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock:
        assert lock.took_over is None
        with pytest.raises(RunLocked) as ei:
            RunLock(tmp_path).acquire()
        assert f"pid {os.getpid()}" in str(ei.value)
    record = json.loads((tmp_path / LOCK_NAME).read_text())
    assert record["pid"] == os.getpid() and "released" in record
    with RunLock(tmp_path) as again:  # a cleanly released lock is not reported as stale
        assert again.took_over is None


def test_stale_record_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "x"}))
    with RunLock(tmp_path) as lock:
        assert lock.took_over is not None and lock.took_over["pid"] == dead.pid
        assert read_holder(tmp_path)["pid"] == os.getpid()


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from harness.campaign.lock import RunLock;"
         "l = RunLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked) as ei:
            RunLock(tmp_path).acquire()
        assert f"pid {holder.pid}" in str(ei.value) and socket.gethostname() in str(ei.value)
    finally:
        holder.kill()
        holder.wait()
    RunLock(tmp_path).acquire().release()  # killed holder: the OS released its lock


def test_simulated_flash_is_private_to_each_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_SIM_STATE", str(tmp_path / "state"))
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    with scoped_to_run(run_a):
        a = FlashStore("sim-pico", 0x1000_0000, 4096)
        a.write(0x1000_0000, b"image A")
        a.save()
        assert a.path == run_state_dir(run_a) / "sim-pico" / "flash.bin"
    # another process programs the same board name for run B
    code = ("import sys; from pathlib import Path; from harness.sim.flashstore import FlashStore, scoped_to_run\n"
            "with scoped_to_run(Path(sys.argv[1])):\n"
            "    s = FlashStore('sim-pico', 0x10000000, 4096); s.write(0x10000000, b'image B'); s.save()\n")
    subprocess.run([sys.executable, "-c", code, str(run_b)], check=True, cwd=ROOT,
                   env={**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state")})
    with scoped_to_run(run_a):
        assert not a.changed_on_disk()  # run B's programming does not reach run A's board
        assert FlashStore("sim-pico", 0x1000_0000, 4096).read(0x1000_0000, 7) == b"image A"
    with scoped_to_run(run_b):
        assert FlashStore("sim-pico", 0x1000_0000, 4096).read(0x1000_0000, 7) == b"image B"
    assert not (tmp_path / "state" / "sim-pico").exists()  # nothing in the shared, unscoped place


@pytest.mark.slow
def test_two_campaigns_on_one_machine_do_not_disturb_each_other(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two real `harness run`s at once, same simulated board name, different run folders: both
    measure every configuration, each from its own flash state."""
    state = tmp_path / "state"
    monkeypatch.setenv("HARNESS_SIM_STATE", str(state))
    env = {**os.environ, "HARNESS_SIM_STATE": str(state), "COLUMNS": "300"}
    runs = [tmp_path / "a" / "run", tmp_path / "b" / "run"]
    procs = []
    for run in runs:
        run.parent.mkdir()
        procs.append(_harness("run", str(CAMPAIGN), "--run-dir", str(run), "--no-report", cwd=run.parent, env=env))
    outs = [p.communicate(timeout=900)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out
    for run in runs:
        with sqlite3.connect(run / "results.sqlite") as con:
            assert {s for (s,) in con.execute("SELECT status FROM configurations")} == {"measured"}
            assert con.execute("SELECT COUNT(*) FROM measurements WHERE warmup = 0").fetchone()[0] == 2 * 4
        assert (run_state_dir(run) / "sim-m4" / "flash.bin").exists()
    assert run_state_dir(runs[0]) != run_state_dir(runs[1])
    assert not (state / "sim-m4").exists()
