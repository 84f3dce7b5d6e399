"""Second backend for cross-checks: run an image on QEMU (``mps2-an386`` for Cortex-M4 images,
the machine whose peripheral map the sim boards copy) and count the instructions it executes.

Why: an independent emulator executing the same ELF must retire exactly as many instructions as
the Unicorn board; a mismatch means one of them diverged (decode, peripheral model, counting).
The count comes from QEMU's own logs (``-d in_asm,exec,nochain``: each translated block's
instructions, and every block execution), up to the semihosting SYS_EXIT that ends the image.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.sim.errors import SimError, SimTimeout

MACHINES = {"cortex-m4": "mps2-an386", "cortex-m4f": "mps2-an386", "cortex-m7": "mps2-an500"}

_IN = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f ]+?)\s{2,}(\S+)", re.M)
_TRACE = re.compile(r"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", re.M)
BKPT_SEMIHOST = "bkpt"


@dataclass(frozen=True)
class QemuCount:
    instructions: int  # retired before the exit (the exiting BKPT not included)
    blocks: int


def qemu_binary() -> str | None:
    return shutil.which("qemu-system-arm")


def count_instructions(elf: str | Path, machine: str = "mps2-an386", timeout_s: float = 60.0) -> QemuCount:
    """Instructions QEMU executes from reset to the image's semihosting exit."""
    qemu = qemu_binary()
    if qemu is None:
        raise SimError("qemu-system-arm is not installed (apt-get install qemu-system-arm)")
    with tempfile.TemporaryDirectory(prefix="harness-qemu-") as tmp:
        log = Path(tmp) / "exec.log"
        cmd = [
            qemu,
            "-M",
            machine,
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "null",
            "-semihosting-config",
            "enable=on,target=native",
            "-d",
            "in_asm,exec,nochain",
            "-D",
            str(log),
            "-kernel",
            str(elf),
        ]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise SimTimeout(
                f"qemu:{machine}", 0, 0, timeout_s, "wall-clock budget (no semihosting exit)"
            ) from None
        return parse_exec_log(log.read_text(errors="replace"))


def parse_exec_log(text: str) -> QemuCount:
    """Sum the instructions of every executed block; the last block counts up to its BKPT."""
    blocks: dict[int, list[tuple[int, str]]] = {}
    total = executed = 0
    last: list[tuple[int, str]] = []
    for chunk in text.split("----------------"):
        for section in re.split(r"(?m)^(?=Trace )", chunk):
            if section.startswith("Trace "):
                for m in _TRACE.finditer(section):
                    last = blocks.get(int(m.group(1), 16), [])
                    total += len(last)
                    executed += 1
            else:
                insns = [(int(a, 16), mn) for a, _, mn in _IN.findall(section)]
                if insns:
                    blocks[insns[0][0]] = insns
    for i, (_, mnem) in enumerate(last):  # the exit BKPT and what follows it never retired
        if mnem.startswith(BKPT_SEMIHOST):
            total -= len(last) - i
            break
    return QemuCount(total, executed)
