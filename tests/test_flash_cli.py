"""`harness flash` from the command line (subprocess): a sim board is programmed through the
pyOCD `sim:` probe into its persistent flash; errors exit non-zero naming board, probe, cause."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")


def harness(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_SIM_STATE": str(state), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_flash_command_programs_sim_board(tmp_path: Path) -> None:
    cfg = load_board("sim-pico")
    elf = build_firmware(cfg, tmp_path / "fw")
    res = harness("flash", "--board", "sim-pico", "--firmware", str(elf), state=tmp_path / "state")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "programmed fw-sim-pico.elf into sim-pico via sim:sim-pico (verified)" in res.stdout
    image = elf.with_suffix(".bin").read_bytes()
    assert (tmp_path / "state" / "sim-pico" / "flash.bin").read_bytes()[: len(image)] == image


def test_flash_command_errors(tmp_path: Path) -> None:
    elf = build_firmware(load_board("sim-m4"), tmp_path / "fw")
    res = harness(
        "flash", "-b", "sim-m4", "-f", str(elf), "--probe", "sim:sim-pico", state=tmp_path / "state"
    )
    assert res.returncode == 1
    assert "flash sim-m4 (probe sim:sim-pico)" in res.stderr and "connected to 'sim-pico'" in res.stderr
    res = harness("flash", "-b", "sim-m4", "-f", str(elf), "--probe", "sim:nothing", state=tmp_path / "state")
    assert res.returncode == 1 and "no debug probe found with unique id 'sim:nothing'" in res.stderr
