"""Mbed CE project for the real boards: generated from the templates, then compiled out of tree
against an Mbed CE checkout (option, $MBED_OS_PATH or the rig file's ``mbed_os``).

Nothing is written into the tree: CMake runs with ``-B`` in a per-board work folder under the
cache, the tree's Python tools come from a venv of the harness's own (harness.build.mbed_tools),
``MBED_MANAGE_SUBMODULES=OFF`` keeps CMake from running git in the tree and
``UPLOAD_METHOD=NONE`` because the harness flashes with pyOCD itself. The work folder is kept
between builds of the same board, so the Mbed OS library is compiled once and a new model only
recompiles its own sources and main.cpp."""

from __future__ import annotations

import fcntl
import filecmp
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any, TextIO

from harness.build.model import ModelSources
from harness.build.templates import template_dir
from harness.build.toolchain import run_tool
from harness.config.board import BoardConfig
from harness.errors import StageError

APP = "bench_firmware"
CLONE_COMMAND = "git clone --depth 1 --recurse-submodules --shallow-submodules https://github.com/mbed-ce/mbed-os.git"
# Submodules the three boards' builds compile from; empty folders mean a clone without them.
REQUIRED_SUBMODULES = ("cmsis/CMSIS_6", "cmsis/CMSIS-RTX")
# Per-target mbed_app.json overrides. ARDUINO_NANO33BLE defaults its console to USB CDC (Mbed's
# USB stack, interrupts during inference); the benchmark protocol runs on the UART pins D1/D0.
TARGET_OVERRIDES: dict[str, dict[str, Any]] = {
    "ARDUINO_NANO33BLE": {"target.console-usb": False, "target.console-uart": True},
}
BUILD_TYPE = "Release"


class MbedTreeMissing(StageError):
    """An Mbed board was built without a usable Mbed CE tree; says what to install and how."""

    def __init__(self, message: str, project_dir: Path | None = None, commands: list[str] | None = None):
        self.project_dir = project_dir
        self.commands = commands or []
        super().__init__(message)


@dataclass(frozen=True)
class MbedProject:
    folder: Path
    build_dir: Path
    commands: list[list[str]]
    mbed_os_path: Path | None


def mbed_pin(board: BoardConfig, pin: str) -> str:
    """Board pin name -> Mbed PinName: RP2040 'GP15' is Mbed CE's 'IO_15'; others are used as is."""
    m = re.fullmatch(r"GP(\d+)", pin)
    if m and board.mcu.upper().startswith("RP2040"):
        return f"IO_{m.group(1)}"
    return pin


def mbed_os_path(option: Path | str | None, rig_value: str | None = None) -> Path | None:
    """The tree to build against: the option, else $MBED_OS_PATH, else the rig file's mbed_os."""
    raw = option or os.environ.get("MBED_OS_PATH") or rig_value
    return Path(raw).expanduser().resolve() if raw else None


def no_tree_message(board: BoardConfig) -> str:
    return (
        f"build for board {board.name}: it is built with Mbed CE (target {board.flash.mbed_target}) and no "
        "Mbed CE tree is configured.\n"
        f"  fix: clone one:  {CLONE_COMMAND} mbed-ce\n"
        "       then pass --mbed-os mbed-ce, or set MBED_OS_PATH=$PWD/mbed-ce, or set mbed_os in the rig file\n"
        "       (the build also needs cmake, ninja-build, gcc-arm-none-eabi and libstdc++-arm-none-eabi-newlib:\n"
        "        `bash scripts/setup.sh` installs them)"
    )


def tree_identity(tree: Path) -> str:
    """What of the tree enters the firmware cache key: its path and version, and the modification
    time of its target database (changes when the tree is updated)."""
    version = (tree / "VERSION").read_text().strip() if (tree / "VERSION").is_file() else "?"
    targets = tree / "targets" / "targets.json5"
    stamp = int(targets.stat().st_mtime) if targets.is_file() else 0
    return f"{tree}|{version}|{stamp}"


def check_tree(board: BoardConfig, tree: Path) -> None:
    """Raise MbedTreeMissing unless ``tree`` is an Mbed CE checkout with its submodules."""
    if not (tree / "tools" / "cmake" / "app.cmake").is_file():
        raise MbedTreeMissing(
            f"build for board {board.name}: {tree} is not an Mbed CE checkout (no tools/cmake/app.cmake inside)\n"
            f"  fix: point --mbed-os / MBED_OS_PATH at a clone made with:  {CLONE_COMMAND}"
        )
    empty = [s for s in REQUIRED_SUBMODULES if not (tree / s).is_dir() or not any((tree / s).iterdir())]
    if empty:
        raise MbedTreeMissing(
            f"build for board {board.name}: Mbed CE tree {tree} lacks its git submodules ({', '.join(empty)} empty)\n"
            f"  fix: run `git -C {tree} submodule update --init` (or clone with --recurse-submodules)"
        )


def _cmake_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def app_config(board: BoardConfig) -> dict[str, Any]:
    """mbed_app.json. An application behind a bootloader (app_offset) is placed by overriding the
    ROM bank: Mbed CE's linker scripts take the memory banks, the old MBED_APP_START macro that
    ARDUINO_NANO33BLE still sets in targets.json5 is ignored (the image would link at 0)."""
    target = board.flash.mbed_target or ""
    overrides = dict(TARGET_OVERRIDES.get(target, {}))
    if board.memory.app_offset:
        overrides["target.memory_bank_config"] = {
            "IROM1": {"start": board.program_base, "size": board.memory.flash_size - board.memory.app_offset}
        }
    return {
        "target_overrides": {
            "*": {
                "platform.stdio-baud-rate": board.uart.baudrate,
                "platform.stdio-convert-newlines": False,
                "target.printf_lib": "minimal-printf",
            },
            **({target: overrides} if overrides else {}),
        }
    }


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
        "BENCH_UART_TX": mbed_pin(board, board.uart.tx_pin) if board.uart.tx_pin else "CONSOLE_TX",
        "BENCH_UART_RX": mbed_pin(board, board.uart.rx_pin) if board.uart.rx_pin else "CONSOLE_RX",
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
    (folder / "mbed_app.json").write_text(json.dumps(app_config(board), indent=2) + "\n")

    build_dir = folder / "build"
    commands = configure_commands(board, folder, build_dir, mbed_os, None)
    return MbedProject(folder=folder, build_dir=build_dir, commands=commands, mbed_os_path=mbed_os)


def configure_commands(
    board: BoardConfig, src: Path, build_dir: Path, mbed_os: Path | None, python: Path | None
) -> list[list[str]]:
    """The CMake configure and build commands with every flag the harness sets."""
    os_arg = str(mbed_os) if mbed_os else "/path/to/mbed-ce"
    py_arg = str(python) if python else "/path/to/venv-with-mbed-ce-tools/bin/python"
    return [
        ["cmake", "-S", str(src), "-B", str(build_dir), "-G", "Ninja", f"-DMBED_OS_PATH={os_arg}",
         f"-DMBED_TARGET={board.flash.mbed_target}", f"-DCMAKE_BUILD_TYPE={BUILD_TYPE}",
         "-DMBED_CREATE_PYTHON_VENV=OFF", f"-DPython3_EXECUTABLE={py_arg}", "-DMBED_MANAGE_SUBMODULES=OFF",
         "-DUPLOAD_METHOD=NONE"],
        ["cmake", "--build", str(build_dir)],
    ]  # fmt: skip


def work_root() -> Path:
    """$HARNESS_MBED_BUILD_DIR, else ~/.cache/harness/mbed-build: one kept build folder per board."""
    env = os.environ.get("HARNESS_MBED_BUILD_DIR")
    return Path(env) if env else Path.home() / ".cache" / "harness" / "mbed-build"


def _sync_tree(src: Path, dst: Path) -> None:
    """Make ``dst`` a copy of ``src`` touching only files that changed (so ninja rebuilds only
    what differs) and removing files ``src`` no longer has."""
    dst.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(src) for p in src.rglob("*") if p.is_file() and p.relative_to(src).parts[0] != "build"}
    for rel in wanted:
        target = dst / rel
        if target.is_file() and filecmp.cmp(src / rel, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)
    for p in sorted(dst.rglob("*"), reverse=True):
        rel = p.relative_to(dst)
        if p.is_file() and rel not in wanted:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()


def compile_project(
    board: BoardConfig, project: MbedProject, timeout: float, dest: Path, *, work_dir: Path | str | None = None,
    log: TextIO | None = None,
) -> tuple[Path, list[Path], list[str]]:
    """Configure and build out of tree; copy the linked ELF to ``dest``/firmware.elf and the
    model's object files to ``dest``/model-objs (for the footprint), all under the board folder's
    lock; return (ELF, model objects, the commands run)."""
    from harness.build.mbed_tools import mbed_python

    tree = project.mbed_os_path
    if tree is None:
        raise MbedTreeMissing(no_tree_message(board), project.folder, [shlex.join(c) for c in project.commands])
    check_tree(board, tree)
    python = mbed_python(tree, log=log or sys.stderr)
    ident = hashlib.sha256(f"{tree}|{board.flash.mbed_target}|{BUILD_TYPE}".encode()).hexdigest()[:10]
    work = Path(work_dir or work_root()) / f"{board.name}-{ident}"
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with open(work / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per board folder at a time (campaign threads, xdist)
        _sync_tree(project.folder, work / "src")
        commands = configure_commands(board, work / "src", work / "build", tree, python)
        for cmd in commands:
            run_tool(cmd, board=board.name, what=f"Mbed build step `{shlex.join(cmd[:2])}`", timeout=timeout, env=env)
        built = work / "build" / f"{APP}.elf"
        if not built.exists():
            raise StageError(f"build for board {board.name}: the Mbed build finished but {built} is missing")
        elf = dest / "firmware.elf"
        shutil.copy2(built, elf)
        objs_dir = dest / "model-objs"
        shutil.rmtree(objs_dir, ignore_errors=True)
        objs_dir.mkdir(parents=True)
        objs = []
        for i, obj in enumerate(sorted((work / "build" / "CMakeFiles").rglob("model/src/*.obj"))):
            objs.append(objs_dir / f"{i:03d}_{obj.name}")
            shutil.copy2(obj, objs[-1])
    return elf, objs, [f"PATH={python.parent}:$PATH " + shlex.join(c) for c in commands]


def shell_commands(project: MbedProject) -> list[str]:
    return [shlex.join(c) for c in project.commands]
