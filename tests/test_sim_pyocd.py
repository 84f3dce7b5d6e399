"""The `sim:` pyOCD probe plugin through pyOCD itself: the `pyocd` CLI (list, flash) in a
subprocess, the Python API in-process, a `remote:` round trip through pyOCD's probe server, and
the target identity check (a wrong -t fails)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import serial
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.sim import registry
from harness.sim.board import SimBoard

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")
PYOCD = [sys.executable, "-m", "pyocd"]


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("HARNESS_SIM_STATE", str(d))
    yield d
    for name in registry.registered():
        registry.get(name).stop()
        registry.unregister(name)


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fw")
    return {name: build_firmware(load_board(name), out) for name in ("sim-m4", "sim-pico")}


def pyocd_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PYOCD, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


def test_pyocd_list_shows_sim_probes_and_targets() -> None:
    probes = pyocd_cli("list")
    assert probes.returncode == 0, probes.stderr
    for name in registry.sim_board_names():
        assert f"sim:{name}" in probes.stdout
    targets = pyocd_cli("list", "--targets")
    for t in ("sim_m4", "sim_pico", "sim_nano33ble", "sim_numaker_pfm_m487"):
        assert re.search(rf"^\s*{t}\s", targets.stdout, re.M), t


def test_pyocd_flash_cli_persists_into_another_process(firmware, state_dir: Path) -> None:
    hexfile = firmware["sim-pico"].with_suffix(".hex")
    res = pyocd_cli("flash", "-u", "sim:sim-pico", "-t", "sim_pico", str(hexfile))
    assert res.returncode == 0, res.stdout + res.stderr
    image = firmware["sim-pico"].with_suffix(".bin").read_bytes()
    assert (state_dir / "sim-pico" / "flash.bin").read_bytes()[: len(image)] == image
    # a board created now (as in the process that runs the rig) boots what the CLI programmed
    board = SimBoard(load_board("sim-pico"))
    board.run(max_cycles=10_000_000, wall_timeout_s=5, until=lambda: b"ready\n" in board.uart.output())


def test_pyocd_flash_cli_wrong_target_fails(firmware) -> None:
    res = pyocd_cli(
        "flash", "-u", "sim:sim-m4", "-t", "sim_pico", str(firmware["sim-pico"].with_suffix(".hex"))
    )
    assert res.returncode != 0
    assert (
        "is for simulated board 'sim-pico', but the probe is connected to 'sim-m4'" in res.stdout + res.stderr
    )


def test_api_flash_into_running_board_then_serial(firmware) -> None:
    from pyocd.core.helpers import ConnectHelper
    from pyocd.flash.file_programmer import FileProgrammer

    board = registry.get_or_create("sim-m4")
    board.start()
    with serial.serial_for_url(board.serial_url, timeout=5) as port:
        with ConnectHelper.session_with_chosen_probe(
            blocking=False,
            unique_id="sim:sim-m4",
            target_override="sim_m4",
            options={"hide_programming_progress": True},
        ) as session:
            target = session.target
            target.reset_and_halt()
            assert board.state == "halted"
            assert target.read32(0xE000ED00) == 0x410FC241  # CPUID of a Cortex-M4 r0p1
            FileProgrammer(session).program(str(firmware["sim-m4"]))
            target.reset()
        assert port.readline() == b"ready\n"
        port.write(b"ping\n")
        assert port.readline() == b"pong\n"


def test_api_halt_read_registers_resume(firmware) -> None:
    from pyocd.core.helpers import ConnectHelper

    board = registry.get_or_create("sim-m4")
    board.program(firmware["sim-m4"])
    port = serial.serial_for_url(board.serial_url, timeout=5)
    board.start()
    assert port.readline() == b"ready\n"
    with (
        port,
        ConnectHelper.session_with_chosen_probe(
            blocking=False,
            unique_id="sim:sim-m4",
            target_override="sim_m4",
            options={"connect_mode": "attach"},
        ) as session,
    ):
        target = session.target
        target.reset()  # a debugger reset reboots the firmware
        assert port.readline() == b"ready\n"
        target.halt()
        pc = target.read_core_register("pc")
        sp = target.read_core_register("sp")
        lo = board.config.memory.flash_base
        assert lo <= pc < lo + 0x1000 and board.config.memory.ram_base <= sp
        cycles = board.cycles
        port.write(b"ping\n")
        port.timeout = 0.5
        assert port.read(5) == b""  # halted: no reply
        port.timeout = 5
        assert board.cycles == cycles
        target.resume()
        assert port.readline() == b"pong\n"


def test_remote_round_trip_through_probe_server(firmware) -> None:
    from harness.sim.rig import SimRig

    with SimRig(["sim-pico"], analyzer=False, pyocd_servers=True) as rig:
        dut = rig["sim-pico"]
        assert dut.pyocd_remote.startswith("remote:127.0.0.1:")
        with serial.serial_for_url(dut.serial_url, timeout=5) as port:
            res = pyocd_cli("flash", "-u", dut.pyocd_remote, "-t", "sim_pico", str(firmware["sim-pico"]))
            assert res.returncode == 0, res.stdout + res.stderr
            assert port.readline() == b"ready\n"
            port.write(b"bench 2\n")
            assert port.readline().startswith(b"cycles=")


def test_cli_flash_from_another_process_reboots_the_running_board(firmware) -> None:
    from harness.sim.rig import SimRig

    with SimRig(["sim-m4"], analyzer=False) as rig:
        dut = rig["sim-m4"]
        assert dut.board.state == "halted"  # erased flash: nothing to run yet
        with serial.serial_for_url(dut.serial_url, timeout=5) as port:
            res = pyocd_cli(
                "flash", "-u", "sim:sim-m4", "-t", "sim_m4", str(firmware["sim-m4"].with_suffix(".hex"))
            )
            assert res.returncode == 0, res.stdout + res.stderr
            assert port.readline() == b"ready\n"  # the rig's board saw the new image and rebooted
            port.write(b"ping\n")
            assert port.readline() == b"pong\n"


def test_pyocd_server_cli_serves_a_sim_probe_to_remote_clients(firmware, state_dir: Path) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*PYOCD, "server", "-u", "sim:sim-pico", "-p", str(port)],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pyocd server did not start"
                time.sleep(0.1)
        res = pyocd_cli(
            "flash",
            "-u",
            f"remote:127.0.0.1:{port}",
            "-t",
            "sim_pico",
            str(firmware["sim-pico"].with_suffix(".hex")),
        )
        assert res.returncode == 0, res.stdout + res.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
    image = firmware["sim-pico"].with_suffix(".bin").read_bytes()
    assert (state_dir / "sim-pico" / "flash.bin").read_bytes()[: len(image)] == image
