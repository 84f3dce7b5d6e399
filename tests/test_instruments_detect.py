"""`harness rig detect`: probes from pyOCD, boards from the Mbed tools' detection, ports from
pyserial, matched and turned into a rig skeleton. USB hardware cannot exist here, so the inputs
are constructed fixtures (tests/fixtures/detect/README.md says how each was made) fed through
the real libraries' classes; the real listing functions run too, on this machine's (empty) USB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pyocd.probe.cmsis_dap_probe import CMSISDAPProbe
from serial.tools.list_ports_common import ListPortInfo

from harness.config.loader import load_model
from harness.config.rig import RigConfig
from harness.instruments import detect as D

FIX = Path(__file__).parent / "fixtures" / "detect"
VENDORED = Path(__file__).resolve().parents[1] / ".." / "shared" / "vendor" / "mbed-ce"
TREE = Path(os.environ.get("MBED_OS_PATH") or VENDORED).resolve()


class _Link:
    """The USB side of a CMSIS-DAP probe (pyOCD's DAPAccess), from pyocd_links.json."""

    def __init__(self, d: dict[str, Any]):
        self.vidpid = tuple(d["vidpid"])
        self.vendor_name, self.product_name, self._uid = d["vendor_name"], d["product_name"], d["unique_id"]
        self.supports_board_and_target_names = d["board_names"] is not None
        self.board_names, self.target_names = d["board_names"], d["target_names"]
        self.is_open = True

    def get_unique_id(self) -> str:
        return self._uid


def _probes() -> list[D.ProbeInfo]:
    links = json.loads((FIX / "pyocd_links.json").read_text())
    return [D.probe_info(CMSISDAPProbe(_Link(d))) for d in links] + [
        D.ProbeInfo("sim:sim-pico", "mcu-bench-harness", "Simulated sim-pico")
    ]


def _ports() -> list[D.PortInfo]:
    out = []
    for d in json.loads((FIX / "serial_ports.json").read_text()):
        p = ListPortInfo(d["device"], skip_link_detection=True)
        p.vid, p.pid, p.serial_number = d["vid"], d["pid"], d["serial_number"]
        p.manufacturer, p.product, p.description = d["manufacturer"], d["product"], d["description"]
        out.append(D.port_info(p))
    return out


def _mbed() -> list[D.MbedDevice]:
    return D.parse_mbed_detect((FIX / "mbed_tools_detect.json").read_text())


def test_pyocd_probe_fields_come_from_pyocd() -> None:
    nulink, dbg, sim = _probes()
    assert (nulink.unique_id, nulink.vendor, nulink.board_name, nulink.target) == (
        "13040000A1B2C3D4E5F60718", "Nuvoton", "NuMaker-PFM-M487", "m487jidae")
    assert (dbg.board_name, dbg.target) == (None, None) and not dbg.simulated and sim.simulated


def test_mbed_detect_output_parses() -> None:
    (dev,) = _mbed()
    assert (dev.target, dev.board_name, dev.serial_port) == ("NUMAKER_PFM_M487", "NuMaker-PFM-M487", "/dev/ttyACM0")
    assert dev.mount_points == ["/media/user/NuMicro MCU"] and dev.build_targets == ["NUMAKER_PFM_M487"]
    assert D.parse_mbed_detect(D.NO_MBED_DEVICES + "\n") == []


def test_mbed_fixture_is_what_the_mbed_tools_print(tmp_path: Path) -> None:
    """Re-make the fixture with the Mbed CE tools' own detect command (only its USB scan replaced)."""
    if not (TREE / "tools" / "pyproject.toml").is_file():
        pytest.skip("needs the Mbed CE tree (MBED_OS_PATH or ../shared/vendor/mbed-ce) for its tools")
    from harness.build.mbed_tools import mbed_python

    python = mbed_python(TREE)
    env = {**os.environ, "MBED_DATABASE_MODE": "OFFLINE"}
    proc = subprocess.run([str(python), str(FIX / "make_mbed_detect.py"), str(tmp_path / "mnt")], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads((FIX / "mbed_tools_detect.json").read_text())


def test_real_mbed_tools_detect_without_devices() -> None:
    """The real `mbed-tools detect --format json` on this machine (no USB boards): no devices."""
    if D.mbed_tools_command() is None:
        if not (TREE / "tools" / "pyproject.toml").is_file():
            pytest.skip("no mbed-tools and no Mbed CE tree to install them from")
        from harness.build.mbed_tools import mbed_python

        mbed_python(TREE)
    assert D.list_mbed_devices() == []


def test_ports_are_matched_to_their_probe_by_usb_serial() -> None:
    ports = D.match_ports(_ports(), _probes(), _mbed())
    by_dev = {p.device: p for p in ports}
    assert by_dev["/dev/ttyACM0"].probe_uid == "13040000A1B2C3D4E5F60718"
    assert by_dev["/dev/ttyACM1"].probe_uid == "E6614103E7652F2F"
    assert by_dev["/dev/ttyUSB0"].probe_uid is None and by_dev["/dev/ttyS0"].probe_uid is None
    assert by_dev["/dev/ttyACM1"].usb_id == "2e8a:000c" and by_dev["/dev/ttyACM1"].vendor == "Raspberry Pi"
    assert by_dev["/dev/ttyUSB0"].vendor == "FTDI (USB-UART)"


def test_skeleton_assigns_known_boards_and_never_a_sim_probe(tmp_path: Path) -> None:
    found = D.detect(_probes, _mbed, _ports)
    assert found.notes == []
    text = D.rig_skeleton(found, "bench")
    doc = tomllib.loads(text)
    duts = doc["duts"]
    assert [d["probe"] for d in duts] == ["13040000A1B2C3D4E5F60718", "E6614103E7652F2F"]
    assert duts[0] == {"board": "numaker-pfm-m487", "probe": "13040000A1B2C3D4E5F60718", "serial": "/dev/ttyACM0",
                       "analyzer_channel": 1, "trigger_pin": 1}  # fmt: skip
    assert duts[1]["board"] == "SET-ME" and duts[1]["serial"] == "/dev/ttyACM1"  # a bare probe: the user says which board
    assert "sim:" not in text
    # once the placeholders are filled in, it is a valid rig file
    filled = text.replace('board = "SET-ME"', 'board = "pico"').replace('resource = "SET-ME"', 'resource = "TCPIP0::192.0.2.10::5025::SOCKET"')
    (tmp_path / "rig.toml").write_text(filled)
    rig = load_model(RigConfig, tmp_path / "rig.toml")
    assert [d.board for d in rig.duts] == ["numaker-pfm-m487", "pico"]


def test_sim_probe_never_guessed_for_a_real_board() -> None:
    sim = D.ProbeInfo("sim:numaker-pfm-m487", "mcu-bench-harness", "Simulated", target="m487jidae")
    assert D.guess_board(sim, None, D._real_boards()) is None
    real = D.ProbeInfo("0123", "Nuvoton", "Nu-Link2", target="m487jidae")
    assert D.guess_board(real, None, D._real_boards()) == "numaker-pfm-m487"


def test_a_failing_source_becomes_a_note_with_a_fix() -> None:
    def broken() -> list[D.ProbeInfo]:
        raise OSError("libusb not found")

    def no_tools() -> list[D.MbedDevice]:
        raise FileNotFoundError("mbed-tools")

    found = D.detect(broken, no_tools, _ports)
    assert any("libusb" in n and "fix:" in n for n in found.notes)
    assert any("mbed-tools not found" in n and "pip install mbed-tools" in n for n in found.notes)


def test_cli_detect_writes_a_skeleton_with_the_real_libraries(tmp_path: Path) -> None:
    out = tmp_path / "my-rig.toml"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "rig", "detect", "--write", str(out), "--json"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = tomllib.loads(out.read_text())
    assert all(not d["probe"].startswith("sim:") for d in doc["duts"])
    again = subprocess.run([sys.executable, "-m", "harness.cli", "rig", "detect", "--write", str(out)],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert again.returncode != 0 and "--force" in again.stdout + again.stderr
