"""Cross-check against a second emulator: QEMU (mps2-an386) and the Unicorn board retire exactly
the same number of instructions for the same ELF (boot, UART output, workload, semihosting exit)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.sim.board import SimBoard
from harness.sim.qemu import count_instructions, parse_exec_log, qemu_binary

pytestmark = pytest.mark.skipif(
    not (have_toolchain() and qemu_binary()), reason="needs arm-none-eabi-gcc + QEMU"
)


@pytest.mark.parametrize("iterations", [2, 9])
def test_instruction_counts_match_qemu(tmp_path: Path, iterations: int) -> None:
    cfg = load_board("sim-m4")
    elf = build_firmware(cfg, tmp_path, (f"BOOT_BENCH={iterations}",))
    board = SimBoard(cfg, persist=False)
    board.program(elf)
    res = board.run(max_cycles=10**8, wall_timeout_s=10)
    assert res.reason == "exit"  # semihosting SYS_EXIT ends the run cleanly
    assert b"ready\n" in board.uart.output()
    qemu = count_instructions(elf)
    assert qemu.instructions == res.insns
    rise, fall = board.bus.edges()
    assert fall.cycle > rise.cycle


def test_parse_exec_log_counts_blocks_and_stops_at_bkpt() -> None:
    log = """----------------
IN: main
0x00000010:  2001       movs     r0, #1
0x00000012:  e7fd       b        #0x10

Trace 0: 0x7f00 [00800408/00000010/00000110/ff000200] main
Trace 0: 0x7f00 [00800408/00000010/00000110/ff000200] main
----------------
IN: main
0x00000020:  2018       movs     r0, #0x18
0x00000022:  beab       bkpt     #0xab
0x00000024:  e7fe       b        #0x24

Trace 0: 0x7f40 [00800408/00000020/00000110/ff000200] main
"""
    count = parse_exec_log(log)
    assert (count.instructions, count.blocks) == (2 + 2 + 1, 3)
