"""The simulated core implements only its own instruction set: an image built for a Cortex-M4F
faults on the simulated Cortex-M0+ as an RP2040 would (HardFault), at once and with the
instruction named, instead of running normally on Unicorn's superset core."""

from __future__ import annotations

from pathlib import Path

import pytest
from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.sim.board import SimBoard
from harness.sim.decode import unsupported
from harness.sim.errors import SimFault

_CS = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)


def _check(core: str, code_hex: str, mnemonic: str) -> str | None:
    (insn,) = list(_CS.disasm(bytes.fromhex(code_hex), 0x1000))
    assert insn.mnemonic == mnemonic  # the bytes are the instruction the case is about
    return unsupported(core, insn.address, insn.size, insn.mnemonic)


@pytest.mark.parametrize(("core", "code", "mnemonic", "fault"), [
    ("cortex-m0plus", "01fb02f0", "mul", "HardFault"),  # 32-bit Thumb-2 multiply
    ("cortex-m0plus", "82fb0301", "smull", "HardFault"),
    ("cortex-m0plus", "08b1", "cbz", "HardFault"),  # 16-bit but ARMv7-M only
    ("cortex-m0plus", "08bf", "it", "HardFault"),
    ("cortex-m0plus", "4843", "muls", None),  # ARMv6-M's own multiply
    ("cortex-m0plus", "00f000f8", "bl", None),
    ("cortex-m0plus", "bff35f8f", "dmb", None),
    ("cortex-m4", "21ee010a", "vmul.f32", "UsageFault (NOCP)"),  # M4 without FPU
    ("cortex-m4f", "21ee010a", "vmul.f32", None),
    ("cortex-m4f", "31ee020b", "vadd.f64", "UsageFault (UNDEFINSTR)"),  # FPv4 is single precision
    ("cortex-m7", "31ee020b", "vadd.f64", None),  # FPv5-D16
    ("cortex-m4", "01fb02f0", "mul", None),
])
def test_instruction_set_per_core(core: str, code: str, mnemonic: str, fault: str | None) -> None:
    why = _check(core, code, mnemonic)
    if fault is None:
        assert why is None
    else:
        assert why is not None and why.startswith(fault) and mnemonic in why


@pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")
def test_m4_image_on_simulated_m0plus_hardfaults(tmp_path: Path) -> None:
    pico = load_board("sim-pico")
    # the same board's memory map, compiled for a Cortex-M4F (the wrong-core build of the issue)
    elf = build_firmware(pico.model_copy(update={"core": "cortex-m4f"}), tmp_path)
    board = SimBoard(pico, persist=False)
    board.program(elf)
    with pytest.raises(SimFault) as info:
        board.run(max_cycles=10_000_000, wall_timeout_s=30, until=lambda: b"ready\n" in board.uart.output())
    fault = info.value
    assert "HardFault" in fault.reason and "ARMv6-M" in fault.reason
    assert fault.instruction.split()[0] in fault.reason
    assert pico.memory.flash_base <= fault.pc < pico.memory.flash_base + 0x1000  # in the startup code
    assert board.state == "faulted" and b"ready" not in board.uart.output()

    right = build_firmware(pico, tmp_path / "m0")  # the correct build still boots
    board.program(right)
    board.run(max_cycles=10_000_000, wall_timeout_s=5, until=lambda: b"ready\n" in board.uart.output())
