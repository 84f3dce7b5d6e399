"""Halting debug of a simulated board through pyOCD's own debug API (the `sim:` probe, real
firmware built with arm-none-eabi-gcc): reset-and-halt at the reset vector, single step, FPB
hardware breakpoints, DWT watchpoints, core and FPU registers, and a fault that halts with the
fault status registers set (docs/sim-debug.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial
from elftools.elf.elffile import ELFFile
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.sim import registry

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")
CFSR, HFSR, BFAR, DFSR = 0xE000ED28, 0xE000ED2C, 0xE000ED38, 0xE000ED30


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_SIM_STATE", str(tmp_path / "state"))
    yield tmp_path / "state"
    for name in registry.registered():
        registry.get(name).stop()
        registry.unregister(name)


@pytest.fixture(scope="module")
def m4_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(load_board("sim-m4"), tmp_path_factory.mktemp("fw"))


def _symbols(elf: Path) -> dict[str, int]:
    with elf.open("rb") as fh:
        return {s.name: s["st_value"] for s in ELFFile(fh).get_section_by_name(".symtab").iter_symbols()}


def _session():
    from pyocd.core.helpers import ConnectHelper

    return ConnectHelper.session_with_chosen_probe(
        blocking=False, unique_id="sim:sim-m4", target_override="sim_m4", options={"connect_mode": "attach"}
    )


def _wait_halted(target, timeout_s: float = 10) -> None:
    import time

    from pyocd.core.target import Target

    deadline = time.monotonic() + timeout_s
    while target.get_state() != Target.State.HALTED:
        assert time.monotonic() < deadline, "core did not halt"
        time.sleep(0.01)


def test_reset_halt_step_breakpoint_watchpoint_registers(m4_elf: Path) -> None:
    from pyocd.core.target import Target

    syms = _symbols(m4_elf)
    board = registry.get_or_create("sim-m4")
    board.program(m4_elf)
    base = board.config.program_base
    sp0, pc0 = (int.from_bytes(board.flash.read(base + i, 4), "little") for i in (0, 4))
    board.start()
    with _session() as session:
        t = session.target
        t.reset_and_halt()
        assert t.get_state() == Target.State.HALTED
        assert t.get_halt_reason() == Target.HaltReason.VECTOR_CATCH
        assert t.read_core_register("pc") == pc0 & ~1 and t.read_core_register("msp") == sp0
        cycles = board.cycles
        t.step()
        assert t.read_core_register("pc") in (pc0 + 1, pc0 + 3)  # one 2- or 4-byte instruction
        assert t.get_halt_reason() == Target.HaltReason.DEBUG and board.cycles > cycles

        main = syms["main"] & ~1
        t.set_breakpoint(main, Target.BreakpointType.HW)
        t.resume()
        _wait_halted(t)
        assert t.get_halt_reason() == Target.HaltReason.BREAKPOINT
        assert t.read_core_register("pc") == main
        t.resume()  # silicon: a breakpoint at the PC matches again at once (debuggers step over it)
        _wait_halted(t)
        assert t.read_core_register("pc") == main
        t.remove_breakpoint(main)

        data = syms["data"]
        assert t.set_watchpoint(data + 8, 4, Target.WatchpointType.WRITE)
        t.resume()
        _wait_halted(t)
        assert t.get_halt_reason() == Target.HaltReason.WATCHPOINT
        assert t.read32(data + 8) == (2 - 20) & 0xFFFFFFFF  # main's init loop just stored data[2]
        assert t.read32(data + 12) == 0  # ... and stopped right after that store
        t.remove_watchpoint(data + 8, 4, Target.WatchpointType.WRITE)

        t.write_core_register("r7", 0x12345678)
        t.write_core_register("s3", 1.5)
        t.write_core_register("d5", -2.25)
        assert t.read_core_register("r7") == 0x12345678
        assert t.read_core_register("s3") == 1.5 and t.read_core_register("d5") == -2.25
        t.resume()
        assert t.get_state() == Target.State.RUNNING


@pytest.mark.parametrize(
    ("command", "cfsr_bits", "bfar"),
    [("fault", 1 << 16, None), ("peek", (1 << 9) | (1 << 15), 0x30000010)],
    ids=["undefined-instruction", "bus-fault"],
)
def test_fault_halts_with_fault_status_registers(m4_elf: Path, command: str, cfsr_bits: int, bfar) -> None:

    board = registry.get_or_create("sim-m4")
    board.program(m4_elf)
    port = serial.serial_for_url(board.serial_url, timeout=5)
    board.start()
    with port, _session() as session:
        t = session.target
        assert port.readline() == b"ready\n"
        t.write32(0xE000EDFC, t.read32(0xE000EDFC) | 1 << 10)  # DEMCR.VC_HARDERR, as gdbservers set
        port.write(command.encode() + b"\n")
        _wait_halted(t)
        assert board.state == "faulted"
        assert t.read32(CFSR) == cfsr_bits
        assert t.read32(HFSR) == 1 << 30  # FORCED: no configurable fault handler enabled
        assert t.read32(DFSR) & 0x8  # VCATCH
        if bfar is not None:
            assert t.read32(BFAR) == bfar
        t.write32(CFSR, cfsr_bits)  # write-one-to-clear, as a fault handler does
        assert t.read32(CFSR) == 0
        t.reset()
        assert port.readline() == b"ready\n"
        assert t.read32(HFSR) == 0  # a system reset clears the fault status
