"""Decode translated blocks once (capstone) into costs, and locate the instruction inside the
current block that made a peripheral access.

Why: inside a Unicorn mmio callback the PC still points at the block start, but the registers are
up to date. Evaluating each load/store's address from the registers finds the accessing
instruction, so GPIO edges and CYCCNT/SysTick reads are timestamped to the instruction.

Unicorn executes every Thumb-2 (and FPU) instruction whatever CPU model is selected, so an image
built for the wrong core would run normally. Each block is therefore also checked against the
simulated core's instruction set (:func:`unsupported`): the first instruction the core does not
implement stops the emulation before the block runs, and the board raises the fault the silicon
would take (HardFault on ARMv6-M, UsageFault on ARMv7E-M).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs
from capstone.arm import ARM_OP_MEM, ARM_SFT_LSL
from unicorn import Uc
from unicorn import arm_const as uca

from harness.sim.cycles import BlockCost, CostModel, block_cost


class Registers(Protocol):
    """The core's registers: a Uc, or a copy taken at an access (harness/sim/uartregs.py)."""

    def reg_read(self, reg: int) -> int: ...


class CounterView(Protocol):
    """The block counter's totals at the start of the current block (harness/sim/counter.py)."""

    cycles: int
    insns: int
    mem: int
    blocks: int
    cur_addr: int
    cur_size: int
    have_cur: int


@dataclass(frozen=True)
class MemOperand:
    base: int | None  # unicorn register id
    index: int | None
    disp: int
    lsl: int
    multi: int  # >0: LDM/STM/PUSH/POP with this many registers


@dataclass(frozen=True)
class Block:
    cost: BlockCost
    mem_ops: tuple[MemOperand | None, ...]
    text: tuple[str, ...]
    literals: tuple[int, ...] = ()  # addresses of its PC-relative reads (see pc_relative_reads)


def pc_relative_reads(address: int, mnemonic: str, op: MemOperand | None) -> tuple[int, ...]:
    """The addresses a PC-relative load reads, known when it is decoded: a literal (LDR/VLDR
    [pc, #imm], LDRD reads two words) or the base of a table (TBB/TBH, LDR [pc, Rm])."""
    if op is None or op.base != uca.UC_ARM_REG_PC or op.multi:
        return ()
    base = mnemonic.split(".")[0]
    if not base.startswith(("ldr", "vldr", "tbb", "tbh")):
        return ()
    if base.startswith(("tbb", "tbh")):
        return (address + 4,)
    target = ((address + 4) & ~3) + op.disp
    return (target, target + 4) if base == "ldrd" else (target,)


@dataclass(frozen=True)
class Position:
    """Counters at the end of the accessing instruction."""

    cycles: int
    insns: int
    mem: int
    pc: int


# ARMv6-M (Cortex-M0/M0+): 16-bit Thumb without CBZ/CBNZ/IT, and only these 32-bit encodings
_V6M_32BIT = frozenset({"bl", "dmb", "dsb", "isb", "mrs", "msr"})
_V6M_16BIT_MISSING = ("cbz", "cbnz", "it")
_NO_FPU = frozenset({"cortex-m0plus", "cortex-m4"})


@dataclass(frozen=True)
class Unsupported:
    """An instruction the simulated core does not implement, and the fault it takes."""

    pc: int
    text: str
    fault: str  # e.g. "HardFault (ARMv6-M has no 32-bit mul.w)"


def unsupported(core: str | None, address: int, size: int, mnemonic: str) -> str | None:
    """Why ``core`` faults on this instruction, or None when it implements it."""
    if core is None:
        return None
    base = mnemonic.split(".")[0]
    if core == "cortex-m0plus":
        if size == 4 and base not in _V6M_32BIT:
            return f"HardFault: undefined instruction (ARMv6-M has no 32-bit {mnemonic})"
        if size == 2 and base.startswith(_V6M_16BIT_MISSING):
            return f"HardFault: undefined instruction (ARMv6-M has no {mnemonic})"
        return None
    if mnemonic.startswith("v") and core in _NO_FPU:
        return f"UsageFault (NOCP): {core} has no FPU for {mnemonic}"
    if core == "cortex-m4f" and ".f64" in mnemonic:
        return f"UsageFault (UNDEFINSTR): the single-precision FPv4 of {core} has no {mnemonic}"
    return None


def _uc_reg(name: str) -> int | None:
    return getattr(uca, f"UC_ARM_REG_{name.upper()}", None)


class BlockDecoder:
    def __init__(self, model: CostModel, flash_range: tuple[int, int], wait_states: int, core: str | None = None):
        """``core`` (a board's ``core``) turns on the instruction-set check; None = run anything."""
        self.model = model
        self.core = core
        self.pending: Unsupported | None = None  # set when a block holds an instruction the core lacks
        self.flash_range = flash_range
        self.wait_states = wait_states
        self._cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
        self._cs.detail = True
        self._blocks: dict[tuple[int, int], Block] = {}
        self._uc: Uc | None = None
        self._cursor_seq = -1
        self._cursor = -1

    def bind(self, uc: Uc) -> None:
        self._uc = uc
        self._cursor_seq = -1

    def clear(self) -> None:
        self._blocks.clear()
        self.pending = None

    def take_pending(self) -> Unsupported | None:
        """The unsupported instruction that stopped the core, once (the board raises its fault)."""
        found, self.pending = self.pending, None
        return found

    def block(self, address: int, size: int) -> Block:
        key = (address, size)
        blk = self._blocks.get(key)
        if blk is None:
            assert self._uc is not None
            code = bytes(self._uc.mem_read(address, size))
            blk = self._blocks[key] = self._decode(address, code)
        return blk

    def cost(self, address: int, size: int) -> BlockCost:
        return self.block(address, size).cost

    def disassemble(self, code: bytes, address: int) -> str:
        for insn in self._cs.disasm(code, address, 1):
            return f"{insn.mnemonic} {insn.op_str}".strip()
        return f"<undecodable {code[:4].hex()}>"

    def _decode(self, address: int, code: bytes) -> Block:
        insns = []
        mem_ops: list[MemOperand | None] = []
        text = []
        literals: list[int] = []
        for insn in self._cs.disasm(code, address):
            insns.append((insn.address, insn.mnemonic, insn.op_str))
            text.append(f"{insn.mnemonic} {insn.op_str}".strip())
            mem_ops.append(self._mem_operand(insn))
            literals.extend(pc_relative_reads(insn.address, insn.mnemonic, mem_ops[-1]))
            why = unsupported(self.core, insn.address, insn.size, insn.mnemonic)
            if why is not None and self.pending is None:
                self.pending = Unsupported(insn.address, text[-1], why)
                if self._uc is not None:
                    self._uc.emu_stop()  # from the block hook: the block does not execute
        lo, hi = self.flash_range
        ws = self.wait_states if lo <= address < hi else 0
        return Block(block_cost(self.model, insns, ws), tuple(mem_ops), tuple(text), tuple(literals))

    def _mem_operand(self, insn) -> MemOperand | None:
        mnem = insn.mnemonic.split(".")[0]
        if mnem.startswith(("push", "pop", "ldm", "stm", "vpush", "vpop", "vldm", "vstm")):
            ops = insn.operands
            base = (
                _uc_reg("sp")
                if mnem.startswith(("push", "pop", "vpush", "vpop"))
                else (_uc_reg(insn.reg_name(ops[0].reg)) if ops else None)
            )
            return MemOperand(base, None, 0, 0, max(1, len(ops)))
        for op in insn.operands:
            if op.type == ARM_OP_MEM:
                m = op.mem
                base = _uc_reg(insn.reg_name(m.base)) if m.base else None
                index = _uc_reg(insn.reg_name(m.index)) if m.index else None
                lsl = op.shift.value if op.shift.type == ARM_SFT_LSL else 0
                disp = m.disp if index is None else 0
                return MemOperand(base, index, disp, lsl, 0)
        return None

    def locate(self, uc: Registers, counter: CounterView, access: int) -> Position:
        """Position of the instruction in the current block that accessed ``access``."""
        if not counter.have_cur:
            return Position(counter.cycles, counter.insns, counter.mem, counter.cur_addr)
        blk = self.block(counter.cur_addr, counter.cur_size)
        if counter.blocks != self._cursor_seq:
            self._cursor_seq = counter.blocks
            self._cursor = -1
        idx = self._match(uc, blk, access)
        self._cursor = idx
        c = blk.cost
        return Position(
            counter.cycles + c.cum_cycles[idx],
            counter.insns + idx + 1,
            counter.mem + c.cum_mem[idx],
            c.addresses[idx],
        )

    def _match(self, uc: Registers, blk: Block, access: int) -> int:
        first = None
        for i in range(self._cursor + 1, len(blk.mem_ops)):
            mo = blk.mem_ops[i]
            if mo is None:
                continue
            if first is None:
                first = i
            if mo.base is None:
                continue
            base = uc.reg_read(mo.base)
            if mo.base == uca.UC_ARM_REG_PC:
                base = (blk.cost.addresses[i] + 4) & ~3
            if mo.multi:
                if abs(access - base) <= 4 * mo.multi:
                    return i
                continue
            addr = base + mo.disp
            if mo.index is not None:
                addr += uc.reg_read(mo.index) << mo.lsl
            if (addr & 0xFFFFFFFF) == access or base == access:
                return i
        if first is not None:
            return first
        return max(0, min(self._cursor + 1, len(blk.mem_ops) - 1))
