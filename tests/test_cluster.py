"""One campaign across two simulated rigs on a real local Ray cluster: a head (`ray start --head`)
and two `harness agent` nodes (instruments/sim-a.toml with sim-m4, sim-b.toml with
sim-nano33ble), each running its board's station with its own simulated N6705A and offering one
CPU for builds. The driver is `harness run --cluster`, which alone writes the run's store.

* One rig's agent is killed (SIGKILL of its process group) part-way: its configuration in flight
  is recorded as interrupted, its other configuration as blocked, the other rig finishes; after
  the agent rejoins, `--resume` (through Ray Client, ray://) completes the run with every (configuration, repetition) stored
  exactly once, and the provenance says which rig and node measured each board.
* A board held by one campaign's station cannot be driven by a second campaign."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.campaign.reserve import BoardReservation, BoardReserved

ROOT = Path(__file__).resolve().parents[1]
TWO = ROOT / "tests" / "data" / "two-station-campaign.toml"
TINY = ROOT / "tests" / "data" / "tiny-campaign.toml"
REPS = 4
CONFIGS = [f"ll/{c}/uint8/{b}" for c in ("none", "s50") for b in ("sim-m4", "sim-nano33ble")]

pytestmark = pytest.mark.slow


def test_reservation_is_exclusive_across_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_RESERVATIONS", str(tmp_path))
    held = BoardReservation("rig", "board", {"campaign": "first", "run_dir": "/r1"}).acquire()
    code = ("from harness.campaign.reserve import BoardReservation as B\n"
            "B('rig', 'board', {'campaign': 'second'}).acquire()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "HARNESS_RESERVATIONS": str(tmp_path)})
    assert out.returncode != 0 and "reserved by campaign 'first'" in out.stderr, out.stderr
    held.release()
    again = BoardReservation("rig", "board", {"campaign": "second"}).acquire()  # free once released
    with pytest.raises(BoardReserved):
        BoardReservation("rig", "board", {}).acquire()  # and exclusive within a process too (flock per fd)
    again.release()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """A Ray head and `harness agent` nodes as real processes, with small footprints."""

    def __init__(self, base: Path):
        self.base = base
        self.tmp = Path(tempfile.mkdtemp(prefix="hray", dir="/tmp"))  # short: Ray's socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = free_port()
        self.client = f"ray://127.0.0.1:{self.client_port}"  # Ray Client, as a driver off the cluster uses
        self.env = {**os.environ, "HARNESS_HOME": str(ROOT), "RAY_TMPDIR": str(self.tmp),
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
                    "RAY_raylet_start_wait_time_s": "120", "RAY_USAGE_STATS_ENABLED": "0",
                    "HARNESS_RESERVATIONS": str(base / "reservations"), "XDG_CACHE_HOME": str(base / "cache")}
        self.agents: dict[str, subprocess.Popen] = {}

    def ray(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ray.scripts.scripts", *args], env=self.env, text=True,
                              capture_output=True, timeout=300)

    def start_head(self) -> None:
        log = open(self.base / "head.log", "a")  # noqa: SIM115 - lives as long as the head
        self.head = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={self.port}",
             "--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=100000000",
             "--include-dashboard=false", "--disable-usage-stats", f"--ray-client-server-port={self.client_port}",
             f"--temp-dir={self.tmp}"], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_for(lambda: bool(self.live_resources()), "the Ray head is up")

    def start_agent(self, rig: str) -> None:
        log = open(self.base / f"agent-{rig}.log", "a")  # noqa: SIM115 - lives as long as the agent
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "agent", "--rig", str(ROOT / "instruments" / f"{rig}.toml"),
             "--address", self.address, "--num-cpus", "1", "--node-ip", "127.0.0.1"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.agents[rig] = proc
        self.wait_for(lambda: f"dut:{rig}/" in json.dumps(self.live_resources()), f"agent {rig} joined")

    def kill_agent(self, rig: str) -> None:
        proc = self.agents.pop(rig)
        os.killpg(proc.pid, signal.SIGKILL)  # the rig PC is gone: agent, ray node, station, simulated parts
        proc.wait(timeout=30)

    def live_resources(self) -> list[dict]:
        code = textwrap.dedent(f"""
            import json, ray
            ray.init(address={self.address!r}, log_to_driver=False, configure_logging=False)
            print(json.dumps([n["Resources"] for n in ray.nodes() if n["Alive"]]))
        """)
        out = subprocess.run([sys.executable, "-c", code], env=self.env, text=True, capture_output=True, timeout=120)
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []

    def wait_for(self, cond, what: str, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for: {what}"
            time.sleep(1.0)

    def stop(self) -> None:
        import psutil  # a dependency of ray

        for proc in [*self.agents.values(), getattr(self, "head", None)]:
            if proc is None:
                continue
            proc.send_signal(signal.SIGTERM)  # `ray start --block` stops what it started
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.agents.clear()
        for p in psutil.process_iter(["pid", "cmdline"]):  # leftovers of this cluster only (its temp dir)
            if str(self.tmp) in " ".join(p.info["cmdline"] or []):
                with contextlib.suppress(psutil.Error):
                    p.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    pytest.importorskip("ray")  # the [cluster] extra; under CI=true a skip fails (conftest)
    c = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start_head()
        c.start_agent("sim-a")
        c.start_agent("sim-b")
        yield c
    finally:
        c.stop()


def harness(c: LocalCluster, cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", *args], cwd=cwd, env=c.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def measurement_rows(db: Path) -> list[tuple[str, int]]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return con.execute("SELECT config_id, repetition FROM measurements WHERE NOT warmup").fetchall()
    except sqlite3.OperationalError:
        return []


def test_second_campaign_cannot_drive_a_reserved_board(cluster: LocalCluster, tmp_path: Path) -> None:
    holder = textwrap.dedent(f"""
        import ray, sys, time
        from harness.campaign.agent import StationService
        from harness.campaign.cluster import open_station
        ray.init(address={cluster.address!r}, namespace="harness", log_to_driver=False)
        st, info = open_station(ray, ray.remote(StationService), "sim-a", "sim-m4",
                                {{"campaign": "first-campaign", "run_dir": "/runs/first"}})
        print("holding", info["rig"], flush=True)
        sys.stdin.read()  # until the test closes our stdin
        ray.get(st.close.remote())
    """)
    first = subprocess.Popen([sys.executable, "-c", holder], env=cluster.env, text=True, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert "holding sim-a" in first.stdout.readline()
        second = harness(cluster, tmp_path, "run", str(TINY), "--run-dir", str(tmp_path / "second"), "--no-report",
                         "--cluster", cluster.address, "--cluster-wait", "3")
        out, _ = second.communicate(timeout=900)
        assert second.returncode != 0, out
        assert "reserved by campaign 'first-campaign'" in " ".join(out.split()), out
        assert measurement_rows(tmp_path / "second" / "results.sqlite") == []
    finally:
        first.stdin.close()
        first.wait(timeout=120)


def test_campaign_across_two_rigs_survives_a_rig_dropping_out(cluster: LocalCluster, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    db = run_dir / "results.sqlite"
    proc = harness(cluster, tmp_path, "run", str(TWO), "--run-dir", str(run_dir), "--no-report",
                   "--cluster", cluster.address, "--cluster-wait", "5")
    deadline = time.monotonic() + 900
    while not any(b.endswith("sim-m4") for b, _ in measurement_rows(db)):  # part-way through rig a's work
        assert proc.poll() is None, f"campaign ended before rig a could be killed:\n{proc.stdout.read()}"
        assert time.monotonic() < deadline, "no measurement on rig a within 15 minutes"
        time.sleep(0.2)
    cluster.kill_agent("sim-a")
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode != 0 and "run again with --resume" in " ".join(out.split()), out
    before = measurement_rows(db)
    with sqlite3.connect(db) as con:
        events = con.execute("SELECT config_id, message FROM events WHERE stage = 'cluster'").fetchall()
    said = {cid: msg for cid, msg in events if cid and ("interrupted" in msg or "blocked" in msg)}
    assert any("interrupted" in msg for msg in said.values()), events
    for c in CONFIGS:  # every configuration of rig a not complete is recorded as interrupted or blocked
        if c.endswith("sim-m4") and len([1 for cid, _ in before if cid == c]) < REPS:
            assert c in said, (c, events)
    for c in CONFIGS:  # the other rig finished its board's work
        if c.endswith("sim-nano33ble"):
            assert sorted(r for cid, r in before if cid == c) == list(range(REPS))
    assert len(before) < len(CONFIGS) * REPS

    cluster.start_agent("sim-a")  # the rig PC is back (a new node)
    again = harness(cluster, tmp_path, "run", str(TWO), "--run-dir", str(run_dir), "--resume", "--no-report",
                    "--cluster", cluster.client, "--cluster-wait", "60")
    out, _ = again.communicate(timeout=900)
    assert again.returncode == 0, out

    rows = measurement_rows(db)
    assert sorted(rows) == sorted((c, r) for c in CONFIGS for r in range(REPS)), "each (config, rep) exactly once"
    assert set(before) <= set(rows), "nothing stored before the drop-out was lost"
    with sqlite3.connect(db) as con:
        status = dict(con.execute("SELECT config_id, status FROM configurations").fetchall())
        prov = con.execute("SELECT config_id, board, extra_json FROM provenance").fetchall()
    assert set(status.values()) == {"measured"}
    placed = {(cid, board, json.loads(extra)["placement"]["rig"]) for cid, board, extra in prov}
    assert {(b, rig) for _, b, rig in placed} == {("sim-m4", "sim-a"), ("sim-nano33ble", "sim-b")}, placed
    assert {cid for cid, _, _ in placed} == set(CONFIGS)
    nodes = {json.loads(extra)["placement"]["node_id"] for _, board, extra in prov if board == "sim-m4"}
    assert len(nodes) == 2, "rig a measured before and after rejoining, as two different nodes"
    with sqlite3.connect(db) as con:  # built as Ray tasks on the agents (they have the toolchain), not the driver
        built = [json.loads(e or "{}").get("built_on") for (e,) in con.execute("SELECT extra_json FROM configurations")]
    agent_nodes = {json.loads(extra)["placement"]["node_id"] for _, _, extra in prov}
    assert all(b and b["node_id"] in agent_nodes for b in built), built
