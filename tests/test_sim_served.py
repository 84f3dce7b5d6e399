"""The simulated rig served by one process and driven by another through configuration only:
`harness sim serve --rig sim-a --write-rig OUT` resolves every 'sim' into ordinary endpoints
(pyOCD remote: probe server, socket:// UART, the simulated N6705A's TCPIP SOCKET resource), and
`harness run --rig OUT` measures through them exactly as on a real rig."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny-campaign.toml"


@pytest.mark.slow
def test_campaign_on_a_rig_served_by_another_process(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_HOME": str(ROOT), "HARNESS_SIM_STATE": str(tmp_path / "served-state")}
    rig_file = tmp_path / "served.toml"
    serve = subprocess.Popen([sys.executable, "-m", "harness.cli", "sim", "serve", "--rig", "sim-a",
                              "--write-rig", str(rig_file), "--for", "600"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        for line in serve.stdout:
            if "ready" in line:
                break
            assert time.monotonic() < deadline, "sim serve did not come up"
        rig = tomllib.loads(rig_file.read_text())
        assert "sim" not in {rig["duts"][0]["serial"], rig["power_analyzer"]["resource"]}
        assert rig["duts"][0]["probe"].startswith("remote:127.0.0.1:")
        run_dir = tmp_path / "run"
        env_run = {**env, "HARNESS_SIM_STATE": str(tmp_path / "driver-state")}  # nothing emulated here
        out = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(TINY), "--rig", str(rig_file),
                              "--run-dir", str(run_dir), "--no-report"], cwd=tmp_path, env=env_run, text=True,
                             capture_output=True, timeout=900)
        assert out.returncode == 0, out.stdout + out.stderr
        with sqlite3.connect(run_dir / "results.sqlite") as con:
            prov = con.execute("SELECT DISTINCT probe_id, serial_port, instrument_idn FROM provenance").fetchall()
            n = con.execute("SELECT COUNT(*) FROM measurements WHERE NOT warmup").fetchone()[0]
        assert prov == [(rig["duts"][0]["probe"], rig["duts"][0]["serial"], prov[0][2])]
        assert "SIMULATED" in prov[0][2]
        assert n == 2 * 4
        assert not list((tmp_path / "driver-state").rglob("flash.bin")), "the driver emulated a board itself"
        assert list((tmp_path / "served-state").rglob("flash.bin")), "the served board was flashed"
    finally:
        serve.terminate()
        serve.wait(timeout=30)
