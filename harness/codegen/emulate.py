"""Cross-compile a generated model into a bare-metal test image and run it on QEMU.

Used to prove that the Cortex-M4 DSP path is bit-exact with the portable path (the host cannot
execute SMLAD) and to count instructions per kernel (``-icount shift=0``: one instruction per
virtual nanosecond; SysTick runs from the 25 MHz MPS2 clock, so one tick = 40 instructions).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.codegen.emit import RUNTIME_DIR, GeneratedModel

CPU_FLAGS = {
    "cortex-m0plus": ["-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"],
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"],
}
QEMU_MACHINE = {"cortex-m4": "mps2-an386", "cortex-m4f": "mps2-an386", "cortex-m7": "mps2-an500"}
CROSS_CC = "arm-none-eabi-gcc"
INSTR_PER_TICK = 40  # icount shift=0 (1 ns per instruction) / 25 MHz SysTick


def have_qemu() -> bool:
    return shutil.which("qemu-system-arm") is not None and shutil.which(CROSS_CC) is not None


def cross_flags(core: str, opt: str = "-O2") -> list[str]:
    return [*CPU_FLAGS[core], "-std=c99", opt, "-ffreestanding", "-Wall", "-Wextra", "-Werror"]


def write_inputs_header(path: Path, inputs: list[bytes], repeat: int = 1) -> None:
    rows = ",\n".join("    {" + ", ".join(str(b) for b in x) + "}" for x in inputs)
    path.write_text(
        f"#define TEST_COUNT {len(inputs)}\n#define TEST_REPEAT {repeat}\n"
        f"static const uint8_t test_inputs[TEST_COUNT][MODEL_INPUT_BYTES] = {{\n{rows}\n}};\n"
    )


def build_image(gen: GeneratedModel, inputs: list[bytes], elf: Path, core: str = "cortex-m4", repeat: int = 1,
                opt: str = "-O2") -> Path:
    """Link model + runtime + testing/qemu_main.c for the MPS2 board of ``core``."""
    work = elf.parent
    write_inputs_header(work / "test_inputs.h", inputs, repeat)
    cmd = [CROSS_CC, *cross_flags(core, opt), "-nostdlib", "-nostartfiles", "-o", str(elf)]
    cmd += [f"-I{d}" for d in (*gen.include_dirs, work)]
    cmd += [f"-D{k}={v}" for k, v in gen.defines.items()]
    cmd += [str(s) for s in gen.sources] + [str(RUNTIME_DIR / "testing" / "qemu_main.c")]
    cmd += ["-T", str(RUNTIME_DIR / "testing" / "mps2_an386.ld"), "-Wl,--start-group", "-lc", "-lgcc", "-Wl,--end-group"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"cross build failed:\n{' '.join(cmd)}\n{res.stderr}")
    return elf


@dataclass
class QemuResult:
    outputs: list[bytes]
    ticks: list[int]  # SysTick ticks per model_run

    @property
    def instructions(self) -> list[int]:
        return [t * INSTR_PER_TICK for t in self.ticks]


def run_qemu(elf: Path, core: str = "cortex-m4", timeout: float = 120.0) -> QemuResult:
    cmd = [
        "qemu-system-arm", "-M", QEMU_MACHINE[core], "-nographic", "-monitor", "none", "-serial", "none",
        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0,align=off,sleep=off",
        "-kernel", str(elf),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"qemu exited with {res.returncode}: {res.stderr[-2000:]}")
    outputs, ticks = [], []
    for ln in (res.stdout + "\n" + res.stderr).splitlines():  # semihosting console is stderr
        if ln.startswith("O "):
            outputs.append(bytes.fromhex(ln[2:].strip()))
        elif ln.startswith("T "):
            ticks.append(int.from_bytes(bytes.fromhex(ln[2:].strip()), "little"))
    return QemuResult(outputs, ticks)


def outputs_array(res: QemuResult, dtype: str) -> np.ndarray:
    return np.stack([np.frombuffer(o, dtype=np.dtype(dtype).newbyteorder("<")) for o in res.outputs])
