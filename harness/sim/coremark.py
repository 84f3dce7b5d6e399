"""CoreMark on a simulated board: the unmodified EEMBC sources (a CoreMark checkout, e.g.
``../shared/vendor/coremark`` or $COREMARK_PATH) with this harness's port layer
(firmware_templates/coremark/), built out of tree, run on the emulator until its semihosting
exit. The benchmark pin is high between CoreMark's start_time() and stop_time(), so the GPIO
window in emulated cycles is the timed section; CoreMark/MHz = iterations * 1e6 / cycles.

A short run (a few iterations) instead of CoreMark's 10 s minimum: the emulated count is
deterministic, so the figure is the same; CoreMark's own report then flags the run as too short,
and a figure from it is a simulated estimate, not a CoreMark score under the EEMBC run rules.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.build.flags import cpu_flags
from harness.build.linker import render_linker_script
from harness.build.templates import template_dir
from harness.build.toolchain import find_toolchain
from harness.config.board import BoardConfig
from harness.config.loader import repo_root
from harness.errors import StageError

# Speed settings of the kind published CoreMark figures are obtained with (EEMBC listings for GCC use
# -O3 plus unrolling/inlining); the same model gives 2.63 CoreMark/MHz on the M4 at plain -O2.
SOURCES = ("core_list_join.c", "core_main.c", "core_matrix.c", "core_state.c", "core_util.c")
OPT_FLAGS = ("-O3", "-funroll-all-loops", "-finline-limit=1000", "-fno-common")
PERFORMANCE_SEED_CRC = "0xe9f5"  # CoreMark's seedcrc for the performance run (seeds 0, 0, 0x66)


@dataclass(frozen=True)
class CoreMarkRun:
    board: str
    core: str
    iterations: int
    cycles: int
    output: str

    @property
    def coremark_per_mhz(self) -> float:
        return self.iterations * 1e6 / self.cycles


def coremark_path() -> Path:
    """$COREMARK_PATH, else the vendored checkout beside the repository."""
    env = os.environ.get("COREMARK_PATH")
    path = Path(env) if env else repo_root().parent / "shared" / "vendor" / "coremark"
    if not (path / "coremark.h").is_file():
        raise StageError(f"no CoreMark checkout at {path} (coremark.h missing); set COREMARK_PATH")
    return path


def build_coremark(board: BoardConfig, out_dir: Path, iterations: int) -> Path:
    tc = find_toolchain()
    src = coremark_path()
    port = template_dir("coremark")
    out_dir.mkdir(parents=True, exist_ok=True)
    lds = out_dir / "board.ld"
    lds.write_text(render_linker_script(board))
    flags = [*cpu_flags(board), "-mthumb", *OPT_FLAGS]
    defines = [
        f"-DITERATIONS={iterations}",
        f"-DCM_CLOCK_HZ={board.clock_hz}u",
        f"-DCM_HAS_DWT={int(board.has_dwt)}",
        f'-DCOMPILER_FLAGS="{" ".join(OPT_FLAGS)}"',
    ]
    elf = out_dir / "coremark.elf"
    cmd = [
        tc.gcc, *flags, *defines, f"-I{port}", f"-I{src}", "-ffreestanding", "-nostartfiles", "-nostdlib",
        "-Wl,--gc-sections", "-Wl,--no-warn-rwx-segments", f"-T{lds}", "-o", str(elf),
        *(str(src / s) for s in SOURCES), str(port / "core_portme.c"),
        "-Wl,--start-group", "-lc_nano", "-lgcc", "-Wl,--end-group",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise StageError(f"CoreMark build for {board.name} failed:\n{proc.stderr[-2000:]}")
    return elf


def run_coremark(board: BoardConfig, elf: Path, iterations: int, wall_timeout_s: float = 120.0) -> CoreMarkRun:
    from harness.sim.board import SimBoard

    sim = SimBoard(board, persist=False)
    sim.program(elf)
    res = sim.run(max_cycles=None, wall_timeout_s=wall_timeout_s)
    out = sim.uart.output().decode(errors="replace")
    if res.reason != "exit":
        raise StageError(f"CoreMark on {board.name} did not finish ({res.reason}); output:\n{out[-1000:]}")
    if re.search(r"ERROR! (list|matrix|state) crc", out) or f"seedcrc          : {PERFORMANCE_SEED_CRC}" not in out:
        raise StageError(f"CoreMark on {board.name}: CRC validation failed; output:\n{out[-1500:]}")
    edges = sim.bus.edges()
    if len(edges) < 2:
        raise StageError(f"CoreMark on {board.name}: the timed section left no GPIO window")
    return CoreMarkRun(board.name, board.core, iterations, edges[-1].cycle - edges[-2].cycle, out)
