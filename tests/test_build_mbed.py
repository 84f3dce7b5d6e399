"""Mbed CE projects for the real boards: generated with each board's pin, target and baud rate
(``generate_only``: "generated, not compiled" with the build commands); without an Mbed tree a
build is an error naming what to install. A stub Mbed tree lets CMake configure the generated
project (syntax, paths, source list). Real Mbed CE builds: tests/test_build_mbed_ce.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from firmware_fixtures.fixture_model import fixture_sources

from harness.build import build_firmware
from harness.build.mbed import MbedTreeMissing
from harness.build.templates import template_dir
from harness.config import load_board
from harness.errors import StageError

CASES = [
    ("nano33ble", "ARDUINO_NANO33BLE", "P1_11", 1),
    ("pico", "RASPBERRY_PI_PICO", "IO_15", 0),
    ("numaker-pfm-m487", "NUMAKER_PFM_M487", "PC_9", 1),
]


@pytest.fixture(autouse=True)
def _no_mbed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MBED_OS_PATH", raising=False)


@pytest.mark.parametrize(("board", "target", "pin", "dwt"), CASES)
def test_mbed_project_generated_not_compiled(tmp_path: Path, board: str, target: str, pin: str, dwt: int) -> None:
    r = build_firmware(fixture_sources(), load_board(board), tmp_path / board, generate_only=True)
    assert r.status == "generated, not compiled" and not r.compiled
    assert r.elf is None and r.footprint is None and r.firmware_sha256 is None
    proj = r.project_dir
    assert proj is not None
    cmake = (proj / "CMakeLists.txt").read_text()
    assert f'set(MBED_TARGET "{target}"' in cmake
    assert f'"BENCH_PIN={pin}"' in cmake
    assert f'"BENCH_HAS_DWT={dwt}"' in cmake
    assert '"BENCH_BAUD=115200u"' in cmake and f'"BOARD_NAME=\\"{board}\\""' in cmake
    assert f'"BUILD_ID=\\"{r.build_id}\\""' in cmake
    cfg = load_board(board)
    assert f'"BENCH_UART_TX={cfg.uart.tx_pin}"' in cmake and f'"BENCH_UART_RX={cfg.uart.rx_pin}"' in cmake
    app = json.loads((proj / "mbed_app.json").read_text())
    assert app["target_overrides"]["*"]["platform.stdio-baud-rate"] == 115200
    if board == "nano33ble":  # behind the bootloader, console on the D1/D0 UART rather than USB CDC
        nano = app["target_overrides"]["ARDUINO_NANO33BLE"]
        assert nano["target.memory_bank_config"] == {"IROM1": {"start": 0x10000, "size": 0xF0000}}
        assert nano["target.console-uart"] is True and nano["target.console-usb"] is False
    else:
        assert set(app["target_overrides"]) == {"*"}
    for rel in ("main.cpp", "common/bench_main.c", "common/hal.h", "model/src/model_fixture.c", "model/include0/model.h"):
        assert (proj / rel).is_file(), rel
    assert any(f"-DMBED_TARGET={target}" in c for c in r.commands)
    for flag in ("-DMBED_CREATE_PYTHON_VENV=OFF", "-DMBED_MANAGE_SUBMODULES=OFF", "-DUPLOAD_METHOD=NONE", "-G Ninja"):
        assert flag in r.commands[0], flag
    assert any(c.startswith("cmake --build") for c in r.commands)
    manifest = json.loads((tmp_path / board / "build.json").read_text())
    assert manifest["status"] == "generated, not compiled" and manifest["commands"] == r.commands


def _hal_functions() -> set[str]:
    text = (template_dir("common") / "hal.h").read_text()
    return set(re.findall(r"^\w[\w\s\*]*?\b(hal_\w+)\(", text, re.M))


@pytest.mark.parametrize("impl", [("mbed", "main.cpp"), ("bare-metal", "hal_sim.c")])
def test_every_hal_function_is_implemented(impl: tuple[str, str]) -> None:
    names = _hal_functions()
    assert {"hal_init", "hal_putc", "hal_getc", "hal_gpio_set", "hal_counter_read", "hal_idle_us"} <= names
    text = (template_dir(impl[0]) / impl[1]).read_text()
    missing = [n for n in names if not re.search(rf"^\w[\w\s\*]*\b{n}\(", text, re.M)]
    assert not missing, f"{impl[1]} lacks {missing}"


def _cmake_defines(cmake: str) -> list[str]:
    block = cmake.split("target_compile_definitions(bench_firmware PRIVATE", 1)[1].split(")", 1)[0]
    return [m.replace('\\"', '"') for m in re.findall(r'^\s*"((?:[^"\\]|\\.)*)"\s*$', block, re.M)]


@pytest.mark.skipif(not shutil.which("g++"), reason="needs a host g++")
@pytest.mark.parametrize("board", [c[0] for c in CASES])
def test_generated_main_cpp_compiles_against_mbed_signatures(tmp_path: Path, board: str) -> None:
    """Host g++ syntax check of the generated project's main.cpp with its own defines, against
    declarations of the Mbed API it uses (tests/firmware_fixtures/mbed_stub)."""
    r = build_firmware(fixture_sources(), load_board(board), tmp_path / board, generate_only=True)
    defines = _cmake_defines((r.project_dir / "CMakeLists.txt").read_text())
    assert any(d.startswith("BENCH_PIN=") for d in defines) and any(d.startswith("BOARD_NAME=") for d in defines)
    stub = Path(__file__).parent / "firmware_fixtures" / "mbed_stub"
    cmd = ["g++", "-fsyntax-only", "-std=c++17", "-Wall", "-Wextra", "-Werror", f"-I{stub}",
           f"-I{r.project_dir / 'common'}", *(f"-D{d}" for d in defines), str(r.project_dir / "main.cpp")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _stub_mbed_tree(root: Path) -> Path:
    (root / "tools" / "cmake").mkdir(parents=True)
    (root / "tools" / "cmake" / "app.cmake").write_text("# stub of Mbed CE's app.cmake\n")
    (root / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.19)\n"
        "add_library(mbed-os INTERFACE)\n"
        "function(mbed_set_post_build target)\nendfunction()\n"
        "function(mbed_finalize_build)\nendfunction()\n"
    )
    return root


@pytest.mark.skipif(not (shutil.which("cmake") and shutil.which("ninja")), reason="needs cmake and ninja")
def test_generated_cmake_project_configures(tmp_path: Path) -> None:
    stub = _stub_mbed_tree(tmp_path / "mbed-os")
    r = build_firmware(fixture_sources(), load_board("nano33ble"), tmp_path / "out", generate_only=True)
    configure = r.commands[0].replace("/path/to/mbed-ce", str(stub))
    proc = subprocess.run(configure, shell=True, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ninja = (r.project_dir / "build" / "build.ninja").read_text()
    assert "model_fixture.c" in ninja and "bench_main.c" in ninja and "main.cpp" in ninja
    assert "BENCH_PIN=P1_11" in ninja


def test_configured_mbed_tree_that_is_not_one_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StageError, match=r"nano33ble.*not an Mbed CE checkout(.|\n)*git clone"):
        build_firmware(fixture_sources(), load_board("nano33ble"), tmp_path / "out", mbed_os=tmp_path)


def test_tree_without_submodules_is_an_error(tmp_path: Path) -> None:
    stub = _stub_mbed_tree(tmp_path / "mbed-os")
    (stub / "cmsis" / "CMSIS_6").mkdir(parents=True)
    with pytest.raises(StageError, match=r"lacks its git submodules \(cmsis/CMSIS_6, cmsis/CMSIS-RTX empty\)"):
        build_firmware(fixture_sources(), load_board("pico"), tmp_path / "out", mbed_os=stub)


@pytest.mark.parametrize("board", [c[0] for c in CASES])
def test_no_tree_is_an_error_naming_the_fix_and_leaves_no_image(tmp_path: Path, board: str) -> None:
    out = tmp_path / board
    out.mkdir()
    (out / "firmware.hex").write_text(":00000001FF\n")  # an older image must not survive a failed build
    with pytest.raises(MbedTreeMissing) as info:
        build_firmware(fixture_sources(), load_board(board), out)
    msg = str(info.value)
    assert f"board {board}" in msg and "no Mbed CE tree is configured" in msg
    assert "git clone --depth 1 --recurse-submodules" in msg and "https://github.com/mbed-ce/mbed-os.git" in msg
    assert "MBED_OS_PATH" in msg and "libstdc++-arm-none-eabi-newlib" in msg
    assert not (out / "firmware.hex").exists() and not (out / "firmware.elf").exists()
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["status"] == "failed: no Mbed CE tree" and (out / "mbed" / "CMakeLists.txt").is_file()


def test_cli_without_tree_exits_nonzero_with_the_clone_command(tmp_path: Path) -> None:
    art = _artifact(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "MBED_OS_PATH"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "build", "--model", str(art), "--board", "pico",
                           "--out", str(tmp_path / "fw"), "--no-cache"], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "no Mbed CE tree" in text and "git clone" in text and "Traceback" not in text


def _artifact(tmp_path: Path) -> Path:
    import numpy as np

    from harness.codegen import examples
    from harness.ir import Artifact

    calib = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    return Artifact(graph=examples.quantize(examples.lenet(seed=3), "int8", calib)).save(tmp_path / "art")
