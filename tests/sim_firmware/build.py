"""Build the sim test firmware for a board with arm-none-eabi-gcc (real cross builds in tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness.config.board import BoardConfig

HERE = Path(__file__).resolve().parent

CPU_FLAGS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mfloat-abi=soft"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mfloat-abi=soft"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
}


def have_toolchain() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None


def build_firmware(
    board: BoardConfig, out_dir: Path, defines: tuple[str, ...] = (), cpu_flags: list[str] | None = None
) -> Path:
    """Compile main.c + startup.c for ``board``; returns the ELF (a .bin and .hex sit next to it).
    ``cpu_flags`` replaces the core's flags (e.g. soft-float on an M4F board)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mem = board.memory
    ld = out_dir / "link.ld"
    ld.write_text(
        (HERE / "link.ld.in")
        .read_text()
        .format(
            flash_base=board.program_base,
            flash_size=mem.flash_size - mem.app_offset,
            ram_base=mem.ram_base,
            ram_size=mem.ram_size,
        )
    )
    tag = "-".join([board.name, *(d.lower() for d in defines), *(["custom"] if cpu_flags is not None else [])])
    elf = out_dir / f"fw-{tag}.elf"
    cmd = [
        "arm-none-eabi-gcc",
        *(cpu_flags if cpu_flags is not None else CPU_FLAGS[board.core]),
        "-mthumb",
        "-O2",
        "-g",
        "-ffreestanding",
        "-nostdlib",
        "-nostartfiles",
        "-T",
        str(ld),
        *(f"-D{d}" for d in defines),
        str(HERE / "startup.c"),
        str(HERE / "main.c"),
        "-lgcc",
        "-o",
        str(elf),
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    for fmt, suffix in (("binary", ".bin"), ("ihex", ".hex")):
        subprocess.run(
            ["arm-none-eabi-objcopy", "-O", fmt, str(elf), str(elf.with_suffix(suffix))],
            check=True,
            capture_output=True,
        )
    return elf
