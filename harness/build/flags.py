"""Compiler and linker flags per core, and the firmware's build-time defines."""

from __future__ import annotations

from typing import Any

from harness.config.board import BoardConfig

CPU_FLAGS: dict[str, list[str]] = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mfloat-abi=soft"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mfloat-abi=soft"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
}

COMMON_CFLAGS = [
    "-mthumb",
    "-O2",
    "-std=gnu11",
    "-ffreestanding",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
]

# No C runtime start files; libc/libm (newlib-nano) are searched only for what the model calls
# (memcpy, expf, ...); --gc-sections drops the rest.
LINK_FLAGS = ["-nostartfiles", "-nostdlib", "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments"]
LINK_LIBS = ["-Wl,--start-group", "-lc_nano", "-lm", "-lgcc", "-Wl,--end-group"]


def cpu_flags(board: BoardConfig) -> list[str]:
    return list(CPU_FLAGS[board.core])


def default_dsp(board: BoardConfig) -> bool:
    """DSP (SIMD) kernels default on where the core has the DSP extension (M4, M7)."""
    return board.core != "cortex-m0plus"


def firmware_defines(board: BoardConfig, build_id: str, max_laps: int | None) -> dict[str, Any]:
    defs: dict[str, Any] = {
        "BOARD_NAME": f'"{board.name}"',
        "BUILD_ID": f'"{build_id}"',
        "BENCH_CLOCK_HZ": f"{board.clock_hz}u",
        "BENCH_BAUD": f"{board.uart.baudrate}u",
        "BENCH_HAS_DWT": int(board.has_dwt),
        "BENCH_GPIO_ACTIVE_HIGH": int(board.gpio.active_high),
    }
    if max_laps is not None:
        defs["BENCH_MAX_LAPS"] = int(max_laps)
    return defs


def define_flags(defines: dict[str, Any]) -> list[str]:
    return [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in sorted(defines.items())]
