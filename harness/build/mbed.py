"""Mbed OS / Mbed CE project for the real boards: generated always, compiled only when an Mbed
tree is configured (option or $MBED_OS_PATH); otherwise the exact build commands are returned."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from harness.build.model import ModelSources
from harness.build.templates import template_dir
from harness.build.toolchain import run_tool
from harness.config.board import BoardConfig
from harness.errors import StageError

APP = "bench_firmware"


@dataclass(frozen=True)
class MbedProject:
    folder: Path
    build_dir: Path
    commands: list[list[str]]
    mbed_os_path: Path | None


def mbed_pin(board: BoardConfig, pin: str) -> str:
    """Board pin name -> Mbed PinName (RP2040 'GP15' is Mbed 'p15'; others are used as is)."""
    m = re.fullmatch(r"GP(\d+)", pin)
    if m and board.mcu.upper().startswith("RP2040"):
        return f"p{m.group(1)}"
    return pin


def mbed_os_path(option: Path | str | None) -> Path | None:
    raw = option or os.environ.get("MBED_OS_PATH")
    return Path(raw).expanduser().resolve() if raw else None


def _cmake_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def generate_project(
    board: BoardConfig, model: ModelSources, folder: Path, defines: dict[str, Any], mbed_os: Path | None
) -> MbedProject:
    """Write main.cpp, the common sources, the model and a CMakeLists.txt/mbed_app.json."""
    if not board.flash.mbed_target:
        raise StageError(f"build for board {board.name}: template 'mbed' needs flash.mbed_target in its board file")
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "common").mkdir(parents=True)
    shutil.copy2(template_dir("mbed") / "main.cpp", folder / "main.cpp")
    for f in template_dir("common").iterdir():
        if f.is_file():
            shutil.copy2(f, folder / "common" / f.name)
    src_dir = folder / "model" / "src"
    src_dir.mkdir(parents=True)
    sources = []
    for i, src in enumerate(model.sources):
        name = src.name if not (src_dir / src.name).exists() else f"{i}_{src.name}"
        shutil.copy2(src, src_dir / name)
        sources.append(f"model/src/{name}")
    includes = []
    for i, inc in enumerate(model.include_dirs):
        dst = folder / "model" / f"include{i}"
        shutil.copytree(inc, dst, ignore=shutil.ignore_patterns("*.c", "*.o", "__pycache__"))
        includes.append(f"model/include{i}")

    all_defines = {
        **{k: v for k, v in model.defines.items()},
        **defines,
        "BENCH_PIN": mbed_pin(board, board.gpio.benchmark_pin),
        "BENCH_UART_TX": board.uart.tx_pin or "CONSOLE_TX",
        "BENCH_UART_RX": board.uart.rx_pin or "CONSOLE_RX",
    }
    define_lines = [
        "    " + _cmake_quote(k if v is None else f"{k}={v}") for k, v in sorted(all_defines.items())
    ]
    text = Template((template_dir("mbed") / "CMakeLists.txt.in").read_text()).substitute(
        board=board.name,
        mbed_target=board.flash.mbed_target,
        mbed_os_path=str(mbed_os or ""),
        model_sources="\n".join(f"    {s}" for s in sources),
        model_includes="\n".join(f"    {s}" for s in includes),
        defines="\n".join(define_lines),
    )
    (folder / "CMakeLists.txt").write_text(text)
    app_json = {
        "target_overrides": {
            "*": {
                "platform.stdio-baud-rate": board.uart.baudrate,
                "platform.stdio-convert-newlines": False,
                "target.printf_lib": "minimal-printf",
            }
        }
    }
    (folder / "mbed_app.json").write_text(json.dumps(app_json, indent=2) + "\n")

    build_dir = folder / "build"
    os_arg = str(mbed_os) if mbed_os else "/path/to/mbed-os"
    commands = [
        ["cmake", "-S", str(folder), "-B", str(build_dir), "-G", "Ninja", f"-DMBED_OS_PATH={os_arg}",
         f"-DMBED_TARGET={board.flash.mbed_target}", "-DCMAKE_BUILD_TYPE=Release"],
        ["cmake", "--build", str(build_dir)],
    ]
    return MbedProject(folder=folder, build_dir=build_dir, commands=commands, mbed_os_path=mbed_os)


def compile_project(board: BoardConfig, project: MbedProject, timeout: float) -> Path:
    """Run the CMake configure and build; return the linked ELF."""
    if project.mbed_os_path is None or not (project.mbed_os_path / "tools" / "cmake").is_dir():
        raise StageError(
            f"build for board {board.name}: {project.mbed_os_path} is not an Mbed CE checkout "
            "(no tools/cmake inside); set MBED_OS_PATH to one"
        )
    for cmd in project.commands:
        run_tool(cmd, board=board.name, what=f"Mbed build step `{shlex.join(cmd[:2])}`", timeout=timeout)
    elf = project.build_dir / f"{APP}.elf"
    if not elf.exists():
        raise StageError(f"build for board {board.name}: the Mbed build finished but {elf} is missing")
    return elf


def shell_commands(project: MbedProject) -> list[str]:
    return [shlex.join(c) for c in project.commands]
