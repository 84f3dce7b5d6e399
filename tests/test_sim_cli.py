"""`harness sim` commands in a subprocess: list, run (output, GPIO pulses, faults), serve."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")


def sim(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_SIM_STATE": str(tmp / "state"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "sim", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_list_shows_sim_boards(tmp_path: Path) -> None:
    res = sim("list", tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    assert re.search(r"^sim-pico\s+cortex-m0plus\s+133 MHz\s+flash 0x10000000", res.stdout, re.M)
    assert "native block hook: available" in res.stdout


def test_run_prints_uart_and_pulses_and_reports_faults(tmp_path: Path) -> None:
    cfg = load_board("sim-m4")
    elf = build_firmware(cfg, tmp_path)
    res = sim(
        "run", "-b", "sim-m4", "-f", str(elf), "--send", "bench 4\\n", "--until", "result=", tmp=tmp_path
    )
    assert res.returncode == 0, res.stderr
    fw_cycles = int(re.search(r"cycles=(\d+)", res.stdout).group(1))
    pulse = int(re.search(r"GPIO pulse at cycle \d+: (\d+) cycles", res.stdout).group(1))
    assert 0 <= fw_cycles - pulse <= 40
    bad = build_firmware(cfg, tmp_path, ("BOOT_FAULT",))
    res = sim("run", "-b", "sim-m4", "-f", str(bad), tmp=tmp_path)
    assert res.returncode == 1
    assert re.search(
        r"sim-m4: firmware fault at pc=0x[0-9a-f]{8} \(udf #0\): undefined instruction", res.stderr
    )


def test_serve_prints_endpoints(tmp_path: Path) -> None:
    res = sim("serve", "-b", "sim-m4", "-b", "sim-pico", "--no-analyzer", "--for", "0.5", tmp=tmp_path)
    assert res.returncode == 0, res.stderr
    for name in ("sim-m4", "sim-pico"):
        assert re.search(
            rf"^{name}: serial socket://127\.0\.0\.1:\d+  probe sim:{name}  pyocd remote:127\.0\.0\.1:\d+",
            res.stdout,
            re.M,
        )
