"""SimRig end to end: boards flashed through the flasher layer (pyOCD API + `sim:` plugin) into the
running rig, answering over pyserial, GPIO pulse widths equal to their self-reported cycles; the
real `harness build` firmware driven with DutLink; the simulated N6705A wired to the boards."""

from __future__ import annotations

import re
import socket
import zlib
from pathlib import Path

import pytest
import serial
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.flash import flasher_for
from harness.sim import registry
from harness.sim.rig import SimRig

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_SIM_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def test_flash_run_and_cross_check_on_m4_and_m0plus(tmp_path: Path) -> None:
    names = ["sim-m4", "sim-pico"]
    with SimRig(names, analyzer=False) as rig:
        assert set(registry.registered()) >= set(names)
        for name in names:
            dut = rig[name]
            cfg = load_board(name)
            assert dut.probe_uid == f"sim:{name}" and dut.board_config == cfg
            elf = build_firmware(cfg, tmp_path / name)
            with serial.serial_for_url(dut.serial_url, timeout=5) as port:
                flasher_for(cfg).program(elf.with_suffix(".hex"))  # pyOCD API, verified read-back
                assert port.readline() == b"ready\n"
                port.write(b"ping\n")
                assert port.readline() == b"pong\n"
                port.write(b"bench 1\n")  # warm the flash cache: cold misses outside the window differ
                assert port.readline().startswith(b"cycles=")
                for n in (5, 25):
                    before = len(dut.bus.edges())
                    port.write(f"bench {n}\n".encode())
                    fw_cycles = int(re.match(rb"cycles=(\d+)", port.readline()).group(1))
                    rise, fall = dut.bus.edges()[before:]
                    assert 0 <= fw_cycles - (fall.cycle - rise.cycle) <= 40
        assert rig.errors() == {}
    assert not set(names) & set(registry.registered())  # the rig unregistered its boards


def test_harness_build_firmware_runs_protocol_through_dutlink(tmp_path: Path) -> None:
    from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_output, fixture_sources

    from harness import build
    from harness.dut import DutLink

    cfg = load_board("sim-m4")
    fw = build.build_firmware(fixture_sources(rounds=1), cfg, tmp_path / "fw")
    with SimRig([cfg], analyzer=False) as rig:
        dut = rig["sim-m4"]
        flasher_for(cfg, probe=dut.probe_uid).program(fw.elf)
        inp = bytes((i * 7 + 1) & 0xFF for i in range(INPUT_BYTES))
        with DutLink(dut.serial_url, timeout=10) as link:
            link.resync()
            assert link.identify().counter == "dwt"
            link.load_input(inp)
            before = len(dut.bus.edges())
            res = link.infer(2)
            edges = dut.bus.edges()[before:]
        assert res.checksums == [zlib.crc32(fixture_output(inp))] * 2
        for lap, rise, fall in zip(res.cycles, edges[::2], edges[1::2], strict=True):
            assert 0 <= (fall.cycle - rise.cycle) - lap < 100


def test_rig_file_starts_analyzer_wired_to_boards() -> None:
    with SimRig.from_rig("sim") as rig:
        assert set(rig.duts) == {"sim-nano33ble", "sim-pico", "sim-m4", "sim-numaker-pfm-m487"}
        assert rig["sim-pico"].dut.analyzer_channel == 2 and rig["sim-pico"].dut.trigger_pin == 2
        host, port = re.match(r"TCPIP0::([\d.]+)::(\d+)::SOCKET", rig.visa_resource).groups()
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"*IDN?\n")
            assert b"N6705" in s.recv(200)
        eps = rig.endpoints()
        assert all(ep["serial"].startswith("socket://127.0.0.1:") for ep in eps.values())
