"""`harness rig doctor`: on the simulated rig with the benchmark firmware flashed, every row is
green (the analyzer over pyvisa-py/TCP, serial ports, `sim:` probes through pyOCD, each board's
firmware answering `identify`, each GPIO pulse seen on the analyzer's digital input); on the
unplugged example rig every failing row carries a fix; the exit code says which."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from firmware_fixtures.fixture_model import fixture_sources

from harness.build import build_firmware
from harness.config import load_board
from harness.config.rig import load_rig
from harness.instruments.doctor import Row, can_run_campaign, diagnose, serial_fix, visa_fix
from harness.sim.n6705a import SimN6705A

needs_gcc = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")


def _doctor(rig: str | Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "rig", "doctor", str(rig)], capture_output=True,
                          text=True, env={**env, "COLUMNS": "400"}, timeout=300)  # fmt: skip


def _rows(output: str) -> list[list[str]]:
    """Table rows of rich's output (one line per row at this width): part, address, status, detail, fix."""
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in output.splitlines() if ln.startswith("│")]
    return [r for r in rows if len(r) == 5]  # the doctor's own table (the drivers table has 4 columns)


@needs_gcc
@pytest.mark.slow
def test_doctor_on_the_simulated_rig_is_all_green(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state")}
    rig = load_rig("sim")
    for d in rig.duts:  # the benchmark firmware on every simulated board, programmed through pyOCD
        fw = build_firmware(fixture_sources(), load_board(d.board), tmp_path / d.board, cache_dir=tmp_path / "cache")
        flashed = subprocess.run([sys.executable, "-m", "harness.cli", "flash", "--board", d.board, "--firmware",
                                  str(fw.hex)], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert flashed.returncode == 0, flashed.stdout + flashed.stderr
    proc = _doctor("sim", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    assert rows and all(r[2] == "OK" for r in rows), [r for r in rows if r[2] != "OK"]
    parts = [r[0] for r in rows]
    for d in rig.duts:
        assert f"firmware {d.board}" in parts and f"GPIO wiring {d.board}" in parts and f"probe {d.board}" in parts
        ident = next(r for r in rows if r[0] == f"firmware {d.board}")
        assert ident[3].startswith(f"{d.board} build ")  # the firmware named itself
        pulse = next(r for r in rows if r[0] == f"GPIO wiring {d.board}")
        assert f"triggered on pin {d.trigger_pin}" in pulse[3]
    assert f"all {len(rows)} checks passed" in proc.stdout


@needs_gcc
@pytest.mark.slow
def test_doctor_finds_an_empty_board_then_passes_a_latency_only_rig(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state")}  # nothing was ever flashed here
    rig = tmp_path / "one.toml"
    rig.write_text('name = "one"\n[[duts]]\nboard = "sim-m4"\nprobe = "sim:sim-m4"\nserial = "sim"\n'
                   '[power_analyzer]\nresource = "sim"\n')  # fmt: skip
    proc = _doctor(rig, env)
    assert proc.returncode == 1
    row = next(r for r in _rows(proc.stdout) if r[0] == "firmware sim-m4")
    assert row[2] == "FAIL" and "harness flash --board sim-m4" in row[4]
    # flashed, on a latency-only rig (no power analyzer): the firmware answers, no GPIO row, exit 0
    fw = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / "fw", cache_dir=tmp_path / "cache")
    flashed = subprocess.run([sys.executable, "-m", "harness.cli", "flash", "--board", "sim-m4", "--firmware", str(fw.hex)],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert flashed.returncode == 0, flashed.stdout + flashed.stderr
    rig.write_text(rig.read_text().replace('resource = "sim"', 'kind = "none"'))
    proc = _doctor(rig, env)
    assert proc.returncode == 0, proc.stdout
    parts = {r[0]: r for r in _rows(proc.stdout)}
    assert parts["firmware sim-m4"][2] == "OK" and "GPIO wiring sim-m4" not in parts
    assert not [p for p in parts if p.startswith("power monitor")]


def test_doctor_on_the_unplugged_example_rig_gives_every_failure_a_fix() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MBED_OS_PATH"}
    proc = _doctor("example-n6705a", env)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    failed = [r for r in rows if r[2] == "FAIL"]
    parts = {r[0] for r in failed}
    assert {"Mbed CE tree", "power monitor (n6705a)", "serial numaker-pfm-m487", "probe numaker-pfm-m487",
            "firmware numaker-pfm-m487"} <= parts, parts  # fmt: skip
    assert all(r[4] for r in failed), [r for r in failed if not r[4]]
    by = {r[0]: r for r in failed}
    assert "git clone" in by["Mbed CE tree"][4] and "mbed_os" in by["Mbed CE tree"][4]
    assert "power_analyzer.resource" in by["power monitor (n6705a)"][4]
    assert "duts.0.serial" in by["serial numaker-pfm-m487"][4] and "duts.0.probe" in by["probe numaker-pfm-m487"][4]
    assert re.search(r"\d+ of \d+ checks failed", proc.stdout)


def test_doctor_with_a_live_analyzer_and_a_dead_port(tmp_path: Path) -> None:
    """Real pyvisa-py to the simulated N6705A; the serial port does not exist."""
    rig_file = tmp_path / "bench.toml"
    with SimN6705A() as sim:
        sim.attach(1, None, "N6781A")
        rig_file.write_text(f'name = "bench"\n[[duts]]\nboard = "sim-m4"\nprobe = "sim:sim-m4"\nserial = "/dev/does-not-exist"\n'
                            f'[power_analyzer]\nresource = "{sim.resource}"\ntimeout_ms = 2000\n')  # fmt: skip
        rig = load_rig(rig_file, check_boards=False)
        rows = diagnose(rig, lambda board: (sim.resource, "/dev/does-not-exist"))
    with SimN6705A() as sim:
        sim.attach(1, None, "N6781A")
        sim.model.execute("BOGUS")  # a stale error in the instrument's queue
        stale = next(r for r in diagnose(rig, lambda board: (sim.resource, "/dev/null")) if r.part == "power monitor (n6705a)")
    assert not stale.ok and "error queue was not empty" in stale.detail and "*CLS" in stale.fix
    by = {r.part: r for r in rows}
    assert by["power monitor (n6705a)"].ok and "ch1=N6781A" in by["power monitor (n6705a)"].detail
    assert not by["serial sim-m4"].ok and "duts.0.serial" in by["serial sim-m4"].fix
    assert not by["firmware sim-m4"].ok and "not checked" in by["firmware sim-m4"].detail
    assert not can_run_campaign(rows)


def test_sim_probe_for_a_real_board_is_refused() -> None:
    from harness.config.rig import RigConfig

    rig = RigConfig(name="x", duts=[{"board": "pico", "probe": "sim:sim-pico", "serial": "/dev/null"}],
                    power_analyzer={"kind": "none"})  # fmt: skip
    rows = diagnose(rig, lambda board: ("", "/dev/null"))
    probe = next(r for r in rows if r.part == "probe pico")
    assert not probe.ok and "simulated probe" in probe.detail and "duts.0.probe" in probe.fix


@pytest.mark.parametrize(("detail", "needle"), [
    ("[Errno 111] Connection refused", "5025"),
    ("[Errno 113] No route to host", "IP address"),
    ("VI_ERROR_RSRC_NFOUND (-1073807343)", "pyvisa info"),
    ("VI_ERROR_TMO (-1073807339): Timeout expired before operation completed.", "LAN cable"),
])  # fmt: skip
def test_visa_errors_map_to_fixes(detail: str, needle: str) -> None:
    assert needle in visa_fix(detail, "power_analyzer.resource")


def test_serial_errors_map_to_fixes() -> None:
    assert "dialout" in serial_fix("[Errno 13] could not open port /dev/ttyACM0: Permission denied", "duts.0.serial")
    assert "harness rig detect" in serial_fix("[Errno 2] No such file or directory", "duts.0.serial")


def test_all_green_needs_rows() -> None:
    assert not can_run_campaign([]) and can_run_campaign([Row("a", "b", True, "")])


@needs_gcc
@pytest.mark.slow
def test_doctor_sees_a_miswired_gpio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated board's GPIO is wired to analyzer pin 1; the rig file claims pin 5."""
    from harness.instruments.cli import rig_endpoints

    monkeypatch.setenv("HARNESS_SIM_STATE", str(tmp_path / "state"))
    rig_file = tmp_path / "one.toml"
    rig_file.write_text('name = "one"\n[[duts]]\nboard = "sim-m4"\nprobe = "sim:sim-m4"\nserial = "sim"\ntrigger_pin = 1\n'
                        '[power_analyzer]\nresource = "sim"\n')  # fmt: skip
    fw = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / "fw", cache_dir=tmp_path / "cache")
    env = {**os.environ, "HARNESS_SIM_STATE": str(tmp_path / "state")}
    flashed = subprocess.run([sys.executable, "-m", "harness.cli", "flash", "--board", "sim-m4", "--firmware", str(fw.hex)],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert flashed.returncode == 0, flashed.stdout + flashed.stderr
    rig = load_rig(rig_file, check_boards=False)
    claimed = rig.model_copy(update={"duts": [rig.duts[0].model_copy(update={"trigger_pin": 5})]})
    with rig_endpoints(rig) as resolve:  # the simulation wires the GPIO as the first file says
        good = {r.part: r for r in diagnose(rig, resolve)}
        bad = {r.part: r for r in diagnose(claimed, resolve)}
    assert good["GPIO wiring sim-m4"].ok, good["GPIO wiring sim-m4"]
    row = bad["GPIO wiring sim-m4"]
    assert not row.ok and "no edge on digital pin 5" in row.detail
    assert "benchmark pin LED0" in row.fix and "digital port pin 5" in row.fix and "duts.0.trigger_pin" in row.fix
