"""Ctrl-C and SIGTERM while a simulated board is being flashed end the process cleanly: real
driver processes (tests/sim_firmware/flash_forever.py: SimRig + the pyOCD flasher through the
`sim:` probe, as a campaign flashes) get SIGINT or SIGTERM at spread-out moments of a flash, 20
times each, and must exit with the harness's own codes (130 / 143), never by SIGSEGV/SIGABRT
or with a fatal-error or heap-corruption message (issue 11)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")]
DRIVER = Path(__file__).parent / "sim_firmware" / "flash_forever.py"
CRASH_MARKS = ("Segmentation fault", "Fatal Python error", "corrupted", "double free", "Aborted")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two different images, so every flash really programs (pyOCD skips identical pages)."""
    out = tmp_path_factory.mktemp("fw")
    board = load_board("sim-m4")
    return [build_firmware(board, out / "a"), build_firmware(board, out / "b", defines=("BOOT_BENCH=3",))]


def _interrupt_once(
    images: list[Path], sig: signal.Signals, delay_s: float, leave_running: bool, state: Path
) -> tuple[int, str]:
    env = {**os.environ, "HARNESS_SIM_STATE": str(state)}
    proc = subprocess.Popen(
        [sys.executable, str(DRIVER), *map(str, images), *(["--leave-running"] if leave_running else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()  # the rig is up and the first flash begins
        assert first.startswith("flashing"), first + (proc.stderr.read() if proc.stderr else "")
        time.sleep(delay_s)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, first + out + err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_during_flashing_never_crashes(images: list[Path], sig: signal.Signals, tmp_path: Path) -> None:
    rng = random.Random(sig.value)  # reproducible spread of moments over a ~0.3-0.8 s flash
    delays = [rng.uniform(0.0, 0.9) for _ in range(20)]
    # Every other run leaves the rig running into the process exit (as when cleanup is cut
    # short): before the fix most such exits died by SIGSEGV in libunicorn (docs/sim-debug.md).
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(
            pool.map(
                lambda i: _interrupt_once(images, sig, delays[i], i % 2 == 1, tmp_path / f"s{i}"),
                range(len(delays)),
            )
        )
    expected = 130 if sig == signal.SIGINT else 128 + signal.SIGTERM
    bad = [(i, rc, log[-1500:]) for i, (rc, log) in enumerate(runs) if rc != expected]
    assert not bad, f"{len(bad)} of {len(runs)} runs did not exit cleanly with {expected}: {bad}"
    for _rc, log in runs:
        assert not any(mark in log for mark in CRASH_MARKS), log[-1500:]
        assert "Traceback" not in log, log[-1500:]
