"""Fast checks of the cluster's naming and of the optional extra staying optional."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from harness.campaign.agent import parse_dut_resource, ray_start_command, resources_for
from harness.config import load_rig


def test_resources_name_every_dut_and_the_analyzer() -> None:
    rig = load_rig("sim-two")
    assert resources_for(rig) == {"dut:sim-two/sim-m4": 1.0, "dut:sim-two/sim-nano33ble": 1.0,
                                  "analyzer:sim-two/n6705a": 1.0}
    assert parse_dut_resource("dut:sim-two/sim-m4") == ("sim-two", "sim-m4")
    assert parse_dut_resource("analyzer:sim-two/n6705a") is None
    assert parse_dut_resource("dut:/x") is None and parse_dut_resource("CPU") is None
    cmd = ray_start_command(rig, "10.0.0.5:6379", 1, 100)
    assert "--block" in cmd and "--address=10.0.0.5:6379" in cmd and "--object-store-memory=100000000" in cmd
    assert any(a.startswith("--resources=") and "dut:sim-two/sim-m4" in a for a in cmd)


def test_the_cli_does_not_import_ray() -> None:
    code = "import sys, harness.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_agent_rejects_a_client_address_and_an_unknown_rig() -> None:
    run = [sys.executable, "-m", "harness.cli", "agent"]
    bad = subprocess.run([*run, "--rig", "sim-a", "--address", "ray://h:10001"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "GCS address" in bad.stdout + bad.stderr
    missing = subprocess.run([*run, "--rig", "no-such-rig", "--address", "h:6379"], capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode != 0 and "no-such-rig" in missing.stderr and "Traceback" not in missing.stderr


def test_served_rig_file_has_no_sim_left() -> None:
    from harness.sim.rig import SimRig
    from harness.sim.served import served_rig_toml

    rig = load_rig("sim-a")
    with SimRig.from_rig(rig, pyocd_servers=True) as sim:
        text = served_rig_toml(rig, sim)
        served = tomllib.loads(text)
        assert served["name"] == "sim-a-served"
        (dut,) = served["duts"]
        assert dut["probe"] == sim["sim-m4"].pyocd_remote and dut["serial"] == sim["sim-m4"].serial_url
        assert served["power_analyzer"]["resource"] == sim.visa_resource
        assert "sim" not in (dut["serial"], served["power_analyzer"]["resource"])


def test_run_on_an_unreachable_head_fails_at_once(tmp_path) -> None:
    import socket
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(root / "tests/data/tiny-campaign.toml"),
                          "--run-dir", str(tmp_path / "r"), "--no-report", "--cluster", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode != 0
    assert "cannot reach the Ray head" in " ".join(out.stderr.split()) and "Traceback" not in out.stderr


class _HeadThatFailsToStartClientServers:
    """Ray's client proxy as seen by ``ray.init``: the per-client server fails to start for the
    first ``failures`` connects (the head's own error texts, from tests/test_cluster.py runs on a
    loaded machine), then the connect succeeds. A stand-in for a head whose load cannot be staged."""

    def __init__(self, failures: list[str]):
        self.failures, self.inits, self.up = failures, 0, False

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **_: object) -> None:
        self.inits += 1
        if self.failures:
            raise ConnectionError(self.failures.pop(0))
        self.up = True


def test_connect_retries_a_client_server_that_failed_to_start(monkeypatch) -> None:
    import pytest

    from harness.campaign import cluster
    from harness.errors import HarnessError

    monkeypatch.setattr(cluster, "_reachable", lambda address: None)
    monkeypatch.setattr(cluster.time, "sleep", lambda s: None)
    zombie = ("Initialization failure from server:\n ... psutil.ZombieProcess: PID still exists but it's a "
              "zombie (pid=20325)")
    head = _HeadThatFailsToStartClientServers(["Starting Ray client server failed", zombie])
    monkeypatch.setattr(cluster, "require_ray", lambda: head)
    assert cluster.connect("ray://127.0.0.1:10001") is head and head.inits == 3

    other = _HeadThatFailsToStartClientServers(["version mismatch: client 2.40, server 2.41"])
    monkeypatch.setattr(cluster, "require_ray", lambda: other)
    with pytest.raises(HarnessError, match="version mismatch"):
        cluster.connect("ray://127.0.0.1:10001")
    assert other.inits == 1, "an error that is not a failed server start is not retried"

    stuck = _HeadThatFailsToStartClientServers([zombie] * 5)
    monkeypatch.setattr(cluster, "require_ray", lambda: stuck)
    with pytest.raises(HarnessError, match="ZombieProcess"):
        cluster.connect("ray://127.0.0.1:10001")
    assert stuck.inits == cluster.CONNECT_ATTEMPTS
