"""The pyOCD flasher backend against the simulated boards (real pyOCD sessions): programming with
verification, reset/halt/run, and each failure mapped to an error naming board, probe and cause."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.errors import StageError
from harness.flash import (
    FlashTimeoutError,
    NoProbeError,
    ProbeConnectionError,
    WrongTargetError,
    flasher_for,
)
from harness.flash.pyocd_flasher import PyocdFlasher
from harness.sim import registry

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_SIM_STATE", str(tmp_path / "state"))
    yield tmp_path / "state"
    for name in registry.registered():
        registry.get(name).stop()
        registry.unregister(name)


@pytest.fixture(scope="module")
def m4_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(load_board("sim-m4"), tmp_path_factory.mktemp("fw"))


@pytest.mark.parametrize("suffix", [".elf", ".hex", ".bin"])
def test_program_each_format_and_boot(m4_elf: Path, suffix: str) -> None:
    cfg = load_board("sim-m4")
    flasher = flasher_for(cfg)
    assert flasher.probe == "sim:sim-m4"
    flasher.program(m4_elf.with_suffix(suffix))
    board = registry.get("sim-m4")
    image = m4_elf.with_suffix(".bin").read_bytes()
    assert board.flash.read(cfg.program_base, len(image)) == image
    board.run(max_cycles=10_000_000, wall_timeout_s=5, until=lambda: b"ready\n" in board.uart.output())


def test_halt_run_reset_control_the_core(m4_elf: Path) -> None:
    cfg = load_board("sim-m4")
    flasher = flasher_for(cfg)
    flasher.program(m4_elf)
    board = registry.get("sim-m4")
    board.start()
    for _ in range(200):  # let the boot after programming finish printing before we clear
        if b"ready\n" in board.uart.output():
            break
        threading.Event().wait(0.01)
    flasher.halt()
    assert board.state == "halted"
    flasher.run()
    assert board.state == "running"
    board.uart.clear_output()
    flasher.reset()
    for _ in range(200):
        if b"ready\n" in board.uart.output():
            break
        threading.Event().wait(0.01)
    assert board.uart.output() == b"ready\n"
    assert any(p.unique_id == "sim:sim-m4" for p in flasher.list_probes())


def test_wrong_target_names_board_probe_and_cause(m4_elf: Path) -> None:
    flasher = PyocdFlasher(load_board("sim-pico"), probe="sim:sim-m4")
    with pytest.raises(WrongTargetError) as info:
        flasher.program(m4_elf)
    msg = str(info.value)
    assert "sim-pico" in msg and "sim:sim-m4" in msg and "connected to 'sim-m4'" in msg


def test_unknown_target_type_is_wrong_target(m4_elf: Path) -> None:
    board = load_board("sim-m4")
    odd = board.model_copy(update={"flash": board.flash.model_copy(update={"pyocd_target": "no_such_chip"})})
    with pytest.raises(WrongTargetError, match="no_such_chip"):
        PyocdFlasher(odd, probe="sim:sim-m4").program(m4_elf)


def test_missing_probe_and_missing_file(m4_elf: Path, tmp_path: Path) -> None:
    with pytest.raises(NoProbeError, match=r"flash sim-m4 \(probe sim:sim-m9\): no debug probe found"):
        PyocdFlasher(load_board("sim-m4"), probe="sim:sim-m9").program(m4_elf)
    with pytest.raises(StageError, match="firmware file not found"):
        flasher_for(load_board("sim-m4")).program(tmp_path / "nope.hex")


def test_refused_and_hung_remote_probes(m4_elf: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(ProbeConnectionError, match="sim-m4"):
        PyocdFlasher(load_board("sim-m4"), probe=f"remote:127.0.0.1:{port}", timeout_s=20).program(m4_elf)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        flasher = PyocdFlasher(load_board("sim-m4"), probe=f"remote:127.0.0.1:{port}", timeout_s=1.0)
        with pytest.raises(FlashTimeoutError, match="did not finish within 1 s"):
            flasher.program(m4_elf)
