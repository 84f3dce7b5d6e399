"""Halting debug of one simulated board, as the Cortex-M debug architecture defines it (ARMv7-M
ARM C1: DHCSR/DFSR, FPB, DWT comparators): halt, single step, hardware breakpoints, watchpoints,
BKPT and vector catch. The debug port (debugport.py) maps the registers; this module does what
they mean on the emulated core.

How it maps onto Unicorn: a breakpoint is a code hook over its one address (the core stops
*before* the instruction, as an FPB match does); a watchpoint is a memory hook over the
comparator's range (the core stops *after* the accessing instruction, as a DWT match does on
Cortex-M); a single step runs one instruction with ``count=1``. Hooks follow the board across
resets because the comparators live in the debug power domain, which a system reset keeps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unicorn import (
    UC_ERR_EXCEPTION,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_CODE,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as uca

from harness.sim import exitguard
from harness.sim.counter import NO_LIMIT
from harness.sim.peripherals import DFSR_BKPT, DFSR_DWTTRAP, DFSR_HALTED, DFSR_VCATCH

if TYPE_CHECKING:
    from harness.sim.board import SimBoard

C_DEBUGEN, C_HALT, C_STEP, C_MASKINTS = 1, 2, 4, 8
DBGKEY = 0xA05F
DWT_FUNCTION_MATCHED = 1 << 24
_DWT_READ, _DWT_WRITE, _DWT_RW = 5, 6, 7  # ARMv7-M DWT_FUNCTION data-address comparisons
_WATCH_HOOK = {
    _DWT_READ: UC_HOOK_MEM_READ,
    _DWT_WRITE: UC_HOOK_MEM_WRITE,
    _DWT_RW: UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE,
}

_FAULT_KIND = {
    UC_ERR_INSN_INVALID: "undef",
    UC_ERR_EXCEPTION: "invstate",
    UC_ERR_FETCH_UNMAPPED: "ifetch-bus",
    UC_ERR_FETCH_PROT: "ifetch-xn",
    UC_ERR_READ_UNMAPPED: "data-bus",
    UC_ERR_WRITE_UNMAPPED: "data-bus",
    UC_ERR_WRITE_PROT: "data-bus",
}


@dataclass
class Watchpoint:
    comp: int = 0
    mask: int = 0
    function: int = 0

    @property
    def kind(self) -> int:
        return self.function & 0xF

    def span(self) -> tuple[int, int]:
        size = 1 << min(self.mask, 31)
        lo = self.comp & ~(size - 1) & 0xFFFFFFFF
        return lo, lo + size - 1


class DebugUnit:
    """DHCSR control bits, FPB and DWT comparators of one SimBoard, and what they do to its core."""

    def __init__(self, board: SimBoard):
        self.board = board
        core = board.config.core
        v6m = core == "cortex-m0plus"
        self.fpb_rev = 2 if core == "cortex-m7" else 1  # FPBv2 (any address) on the M7 only
        self.num_code = {"cortex-m0plus": 4, "cortex-m7": 8}.get(core, 6)
        self.num_lit = 0 if v6m or core == "cortex-m7" else 2
        self.fpb_enabled = False
        self.fp_comp = [0] * (self.num_code + self.num_lit)
        self.watchpoints = [Watchpoint() for _ in range(4 if board.config.has_dwt else 0)]
        self.control = 0  # DHCSR C_* bits
        self._retired_at = 0
        self._uc: Uc | None = None
        self._hooks: list[Any] = []
        self._installed: tuple[frozenset[int], tuple[tuple[int, int, int, int], ...]] = (frozenset(), ())
        self._pending = False
        self._step_pc: int | None = None  # the instruction a step executes despite a breakpoint
        self.started_board = False  # resume() had to start the board's thread (standalone debugger)

    # -- registers -------------------------------------------------------------------------
    def fp_ctrl(self) -> int:
        code = self.num_code
        return (
            (self.fpb_rev - 1) << 28
            | (code >> 4) << 12
            | self.num_lit << 8
            | (code & 0xF) << 4
            | int(self.fpb_enabled)
        )

    def write_fp_ctrl(self, value: int) -> None:
        if value & 0x2:  # KEY must be written as one for ENABLE to change
            self.fpb_enabled = bool(value & 1)
            self.sync_hooks()

    def write_fp_comp(self, index: int, value: int) -> None:
        if 0 <= index < len(self.fp_comp):
            self.fp_comp[index] = value & 0xFFFFFFFF
            self.sync_hooks()

    def breakpoints(self) -> set[int]:
        """Instruction addresses the enabled code comparators match."""
        if not self.fpb_enabled:
            return set()
        out: set[int] = set()
        for comp in self.fp_comp[: self.num_code]:
            if not comp & 1:
                continue
            if self.fpb_rev == 2:
                out.add(comp & 0xFFFFFFFE)
                continue
            base, replace = comp & 0x1FFFFFFC, comp >> 30
            if replace & 1:
                out.add(base)
            if replace & 2:
                out.add(base + 2)
        return out

    def read_dwt(self, offset: int) -> int:
        """DWT_COMPn/MASKn/FUNCTIONn at ``offset`` (0x20 + 16 n + 0/4/8) from the DWT base."""
        n, reg = divmod(offset - 0x20, 16)
        if not 0 <= n < len(self.watchpoints):
            return 0
        wp = self.watchpoints[n]
        if reg == 0:
            return wp.comp
        if reg == 4:
            return wp.mask
        if reg == 8:
            value = wp.function
            wp.function &= ~DWT_FUNCTION_MATCHED  # MATCHED clears on read
            return value
        return 0

    def write_dwt(self, offset: int, value: int) -> None:
        n, reg = divmod(offset - 0x20, 16)
        if not 0 <= n < len(self.watchpoints):
            return
        wp = self.watchpoints[n]
        if reg == 0:
            wp.comp = value & 0xFFFFFFFF
        elif reg == 4:
            wp.mask = value & 0x1F
        elif reg == 8:
            wp.function = value & 0xF
        self.sync_hooks()

    def dhcsr(self) -> int:
        """Status half of DHCSR (S_REGRDY always: register transfers complete at once)."""
        b = self.board
        value = self.control & ~C_HALT | 1 << 16
        if b.state != "running":
            value |= 1 << 17
            if self.control & C_DEBUGEN:
                value |= C_HALT  # the core sets C_HALT on entering debug state
        if b.insns != self._retired_at:
            value |= 1 << 24  # S_RETIRE_ST: instructions retired since the last read
            self._retired_at = b.insns
        return value

    def write_dhcsr(self, value: int) -> None:
        if (value >> 16) != DBGKEY:
            return
        b = self.board
        was_debugging = bool(self.control & C_DEBUGEN)
        self.control = value & 0xF
        if not self.control & C_DEBUGEN:
            self.control = 0
            return
        if self.control & C_HALT:
            if b.state == "running":
                b.halt()
                b.scb.dfsr |= DFSR_HALTED
        elif self.control & C_STEP:
            self.step()
        elif was_debugging:  # leaving debug state; a first DEBUGEN write only enables debug
            self.resume()

    # -- run control -----------------------------------------------------------------------
    def resume(self) -> None:
        b = self.board
        if b.state == "running":
            return
        if b.flash.dirty:
            b.flash.save()
        with b._cv:
            if b.state == "faulted":  # re-executing the faulting instruction faults again, as on silicon
                b.state = "halted"
        if b.blank:
            return
        if b._running_thread():
            b.resume()
        else:
            b.start()  # a standalone debugger process: nobody else runs this board
            self.started_board = True

    def step(self) -> None:
        """Execute exactly one instruction of a halted core (a breakpoint on it does not match)."""
        b = self.board
        with b._cv, exitguard.engine_access(b.name):
            if b.state == "running" or b.blank or b._uc is None:
                return
            uc, c = b._uc, b.counter
            pc = uc.reg_read(uca.UC_ARM_REG_PC)
            c.cycle_limit, c.stop_request, c.stopped = NO_LIMIT, 0, 0
            b._bad_access = None
            b._deadline = time.monotonic()  # a UART poll stepped into does not wait for input
            self._step_pc = pc
            b.state = "halted"
            try:
                b.emu_start(count=1)
            except UcError as err:
                if b._is_semihosting_exit(err) or self.bkpt_halt(err):
                    pass
                else:
                    self.latch_fault(err)
                    b.error, b.state = b._fault(err), "faulted"
            finally:
                self._step_pc = None
                b._deadline = None
                b._want_halt = False
            if b.state != "faulted":
                b._commit_partial(uc.reg_read(uca.UC_ARM_REG_PC))
            b.power.active(c.cycles, c.insns, c.mem)
            b.scb.dfsr |= DFSR_HALTED

    def vector_catch_reset(self) -> None:
        """The core stopped at the reset vector because DEMCR.VC_CORERESET was set."""
        self.board.scb.dfsr |= DFSR_VCATCH

    # -- the emulated core ---------------------------------------------------------------------
    def attach(self, uc: Uc) -> None:
        """A new Unicorn instance (board reset): re-install the comparators' hooks on it."""
        self._uc = uc
        self._hooks = []
        self.apply_pending(force=True)

    def _wanted(self) -> tuple[frozenset[int], tuple[tuple[int, int, int, int], ...]]:
        """What the comparators ask for: breakpoint addresses, (index, kind, lo, hi) per watchpoint."""
        wps = tuple((i, wp.kind, *wp.span()) for i, wp in enumerate(self.watchpoints) if wp.kind in _WATCH_HOOK)
        return frozenset(self.breakpoints()), wps

    def sync_hooks(self) -> None:
        """Bring the core's hooks in line with the comparators. Unicorn hooks cannot change while
        the core executes, so on a running core this waits for the next slice (apply_pending)."""
        b = self.board
        if self._uc is None or self._wanted() == self._installed:
            return
        if b.state == "running" and b._running_thread():
            self._pending = True
            return
        with b._cv:
            self.apply_pending(force=True)

    def apply_pending(self, force: bool = False) -> None:
        """Called by the board between slices (and under its lock) to install changed hooks."""
        uc = self._uc
        if uc is None or not (force or self._pending):
            return
        self._pending = False
        wanted = self._wanted()
        for h in self._hooks:
            uc.hook_del(h)
        self._hooks = []
        breakpoints, watchpoints = wanted
        for address in sorted(breakpoints):
            self._hooks.append(uc.hook_add(UC_HOOK_CODE, self._on_break, begin=address, end=address))
        for index, kind, lo, hi in watchpoints:
            # Unicorn matches an access by its first byte: widen by 3 so accesses that start
            # below the range and overlap it reach the overlap test in _on_access.
            h = uc.hook_add(_WATCH_HOOK[kind], self._on_access, index, begin=max(lo - 3, 0), end=hi)
            self._hooks.append(h)
        self._installed = wanted
        uc.ctl_flush_tb()  # type: ignore[attr-defined]  # translated blocks carry their hooks

    def _halt_core(self, uc: Uc) -> None:
        self.board._want_halt = True  # the board's run loop ends the slice as a halt
        uc.emu_stop()

    def _on_break(self, uc: Uc, address: int, size: int, _ud: object) -> None:
        if address == self._step_pc or not self.control & C_DEBUGEN:
            return
        self.board.scb.dfsr |= DFSR_BKPT
        self._halt_core(uc)

    def _on_access(self, uc: Uc, access: int, address: int, size: int, value: int, index: int) -> None:
        wp = self.watchpoints[index]
        lo, hi = wp.span()
        if address > hi or address + size - 1 < lo or not self.control & C_DEBUGEN:
            return
        wp.function |= DWT_FUNCTION_MATCHED
        self.board.scb.dfsr |= DFSR_DWTTRAP
        self._halt_core(uc)

    def bkpt_halt(self, err: UcError) -> bool:
        """A BKPT instruction (not semihosting) with a debugger attached halts the core on it."""
        b = self.board
        if err.errno != UC_ERR_EXCEPTION or not self.control & C_DEBUGEN or b._uc is None:
            return False
        pc = b._uc.reg_read(uca.UC_ARM_REG_PC)
        try:
            insn = int.from_bytes(bytes(b._uc.mem_read(pc, 2)), "little")
        except UcError:
            return False
        if insn & 0xFF00 != 0xBE00 or insn == 0xBEAB:
            return False
        b._commit_partial(pc)
        b.scb.dfsr |= DFSR_BKPT
        b._want_halt = True
        return True

    def latch_fault(self, err: UcError) -> None:
        """Set the fault status registers for the fault Unicorn reported."""
        kind = _FAULT_KIND.get(err.errno)
        if kind is not None:
            address = self.board._bad_access
            self.board.scb.latch_fault(kind, address)
