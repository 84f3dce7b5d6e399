"""Cycle cost models (ESTIMATES) for the emulated cores, per instruction class.

Sources:
- Cortex-M4: Arm Cortex-M4 Technical Reference Manual (DDI 0439), "Processor instruction timings"
  (table 3-1), "Load/store timings" and the FPU chapter (VDIV/VSQRT 14, VMLA 3). Branch refill P
  "ranges from 1 to 3 depending on the alignment and width of the target instruction, and whether
  the processor manages to speculate the address early": P = 1 for a branch whose target address
  is known early (B, B<cond>, CBZ, BL, BX/BLX register), plus 1 when the target is a 32-bit
  instruction at an odd halfword (two fetches; applied by the block hook, which knows the target);
  P = 3 when the address comes from a load (POP {pc}, LDR pc, LDM pc) or a table (TBB/TBH: load 2
  + add 1 + refill 3). Neighbouring single loads/stores pipeline: a run of N takes N+1 cycles;
  STR Rx,[Ry,#imm] is always one cycle; an IT folds onto a preceding 16-bit instruction (0 cycles).
- Cortex-M0+: Arm Cortex-M0+ Technical Reference Manual (DDI 0484), "Instruction set summary":
  ALU 1, LDR/STR 2, LDM/STM/PUSH/POP 1+N, B/BX taken 2, BL 3, POP {pc} 3+N, single-cycle
  multiplier (the RP2040 option; ``small_multiplier=True`` gives the 32-cycle iterative one).
- Cortex-M7: no public per-instruction table; estimates for the dual-issue core with TCM from
  Arm's description (Cortex-M7 TRM, "Dual-issue" and "Branch prediction"): an ALU op pairs with
  a following ALU op or single load/store (and a load/store with a following ALU op; never two
  memory ops), loads/stores 1, LDM/STM 1+N/2, a taken branch predicted by the BTAC refills in 1
  (2 after a PC load), FPU as the M4F.

Not modelled here: bus contention, data-dependent divide time (2-12 -> 7), unaligned access.
The memory system (flash wait states, caches, data reads from flash) is harness/sim/memmodel.py;
without a cache model ``wait_states`` below are added per instruction fetched from flash.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

_CONDS = (
    "eq",
    "ne",
    "cs",
    "hs",
    "cc",
    "lo",
    "mi",
    "pl",
    "vs",
    "vc",
    "hi",
    "ls",
    "ge",
    "lt",
    "gt",
    "le",
    "al",
)

_BRANCH = {"b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh"}
_LOAD = {
    "ldr",
    "ldrb",
    "ldrh",
    "ldrsb",
    "ldrsh",
    "ldrex",
    "ldrexb",
    "ldrexh",
    "ldrt",
    "ldrbt",
    "ldrht",
    "lda",
}
_STORE = {"str", "strb", "strh", "strex", "strexb", "strexh", "strt", "strbt", "strht", "stl"}
_DOUBLE = {"ldrd", "strd"}
_MULTI = {"ldm", "ldmia", "ldmfd", "ldmdb", "ldmea", "stm", "stmia", "stmea", "stmdb", "stmfd", "push", "pop"}
_MUL = {
    "mul",
    "mla",
    "mls",
    "umull",
    "smull",
    "umlal",
    "smlal",
    "umaal",
    "smulbb",
    "smulbt",
    "smultb",
    "smultt",
    "smulwb",
    "smulwt",
    "smlabb",
    "smlabt",
    "smlatb",
    "smlatt",
    "smlawb",
    "smlawt",
    "smlad",
    "smladx",
    "smlsd",
    "smlsdx",
    "smuad",
    "smuadx",
    "smusd",
    "smusdx",
    "smmul",
    "smmulr",
    "smmla",
    "smmlar",
    "smmls",
    "smmlsr",
    "smlald",
    "smlaldx",
    "smlsld",
    "smlsldx",
    "smlalbb",
    "smlalbt",
    "smlaltb",
    "smlaltt",
}
_DIV = {"sdiv", "udiv"}
_FP_MAC = {"vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms"}
_FP_LONG = {"vdiv", "vsqrt"}
_FP_MEM = {"vldr", "vstr"}
_FP_MULTI = {"vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}
_KNOWN = _BRANCH | _LOAD | _STORE | _DOUBLE | _MULTI | _MUL | _DIV | _FP_MAC | _FP_LONG | _FP_MEM | _FP_MULTI


@dataclass(frozen=True)
class CostModel:
    """Per-class cycle costs of one core (see the module docstring for sources)."""

    name: str
    alu: int = 1
    load: int = 2
    store: int = 2
    pipelined_mem: bool = False  # M4: a run of N single loads/stores costs N+1
    store_imm: int | None = None  # M3/M4 TRM: STR Rx,[Ry,#imm] is always one cycle (store overlaps)
    multi_base: int = 1  # LDM/STM/PUSH/POP: multi_base + ceil(N / multi_per_cycle)
    multi_per_cycle: int = 1
    mul: int = 1
    div: int | None = 7  # None: no hardware divider
    branch_penalty: int = 2  # extra cycles of a taken branch (pipeline refill)
    load_pc_penalty: int | None = None  # refill after a PC load / table branch (default branch_penalty)
    unaligned_target_extra: int = 0  # M4: +1 refill for a 32-bit target at an odd halfword
    it_folding: bool = False  # M4: IT after a 16-bit instruction costs nothing
    bl_extra: int = 0  # BL costs this much more than B (32-bit fetch on M0+)
    load_pc_extra: int = 0  # POP {pc} / LDR pc extra on top of the penalty
    dual_issue: bool = False  # M7: two simple ALU ops in a row issue together
    dual_issue_mem: bool = False  # M7: a single load/store also pairs with an ALU op (one LSU slot)
    fp: int = 1
    fp_mac: int = 3
    fp_long: int = 14
    fp_mem: int = 2
    extra: dict[str, int] = field(default_factory=dict)


CORTEX_M4 = CostModel(
    "cortex-m4",
    pipelined_mem=True,
    store_imm=1,
    branch_penalty=1,
    load_pc_penalty=3,
    unaligned_target_extra=1,
    it_folding=True,
    extra={"tbb": 3, "tbh": 3},
)
CORTEX_M0PLUS = CostModel(
    "cortex-m0plus",
    div=None,
    branch_penalty=1,
    bl_extra=1,
    load_pc_extra=1,
    fp=0,
    fp_mac=0,
    fp_long=0,
    fp_mem=0,
    extra={"mrs": 3, "msr": 3, "dmb": 3, "dsb": 3, "isb": 3, "wfi": 2, "wfe": 2},
)
CORTEX_M0PLUS_SMALL_MUL = CostModel(
    "cortex-m0plus-small-mul",
    mul=32,
    div=None,
    branch_penalty=1,
    bl_extra=1,
    load_pc_extra=1,
    extra=CORTEX_M0PLUS.extra,
)
CORTEX_M7 = CostModel(
    "cortex-m7",
    load=1,
    store=1,
    multi_per_cycle=2,
    branch_penalty=1,
    load_pc_penalty=2,
    dual_issue=True,
    dual_issue_mem=True,
    fp_mem=1,
)

MODELS: dict[str, CostModel] = {
    m.name: m for m in (CORTEX_M4, CORTEX_M0PLUS, CORTEX_M0PLUS_SMALL_MUL, CORTEX_M7)
}


def get_model(name: str) -> CostModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown cycle model {name!r}; known: {', '.join(MODELS)}") from None


def base_mnemonic(mnemonic: str) -> str:
    """'ldrbeq.w' -> 'ldrb', 'vadd.f32' -> 'vadd', 'bne' -> 'b', 'muls' -> 'mul' (for classes)."""
    m = mnemonic.lower().split(".")[0]
    cands = [m]
    if m[-2:] in _CONDS:
        cands.append(m[:-2])
    cands += [c[:-1] for c in list(cands) if c.endswith("s")]
    for c in cands:
        if c in _KNOWN:
            return c
    return m


@dataclass(frozen=True)
class InsnCost:
    cycles: int
    is_mem: bool
    writes_pc: bool


def _writes_pc(base: str, op_str: str) -> bool:
    if base in _BRANCH:
        return True
    ops = op_str.replace(" ", "")
    if base in ("pop", "ldm", "ldmia", "ldmfd", "ldmdb"):
        return "pc" in ops
    if base in ("ldr", "mov", "add"):
        return ops.startswith("pc,")
    return False


def _imm_offset(op_str: str) -> bool:
    """'r0, [r1, #4]' / 'r0, [r1]' / 'r0, [r1], #4' (not a register offset like [r1, r2])."""
    if "[" not in op_str:
        return False
    inner = op_str[op_str.index("[") + 1 : op_str.index("]")].split(",")
    return len(inner) == 1 or inner[1].strip().startswith("#")


def _reg_count(op_str: str, base: str) -> int:
    """Registers in a register list ({r4-r7, lr} = 5; d registers count as 2 words)."""
    if "{" not in op_str:
        return 1
    body = op_str[op_str.index("{") + 1 : op_str.index("}")]
    n = 0
    for part in body.split(","):
        part = part.strip()
        words = 2 if part.startswith("d") else 1
        if "-" in part:
            lo, hi = part.split("-")
            n += (int(hi.strip()[1:]) - int(lo.strip()[1:]) + 1) * words
        elif part:
            n += words
    return n


def insn_cost(
    model: CostModel, mnemonic: str, op_str: str, prev_mem: bool = False, prev_alu: bool = False
) -> tuple[InsnCost, str]:
    """Cost of one instruction (taken-branch penalty excluded: it depends on the next block).

    Returns the cost and the instruction class ('alu', 'mem', 'multi', 'branch', ...)."""
    base = base_mnemonic(mnemonic)
    writes_pc = _writes_pc(base, op_str)
    if base in model.extra:
        return InsnCost(model.extra[base], False, writes_pc), "other"
    if base in _BRANCH:
        return InsnCost(model.alu + (model.bl_extra if base in ("bl", "blx") else 0), False, True), "branch"
    if base in _LOAD or base in _STORE:
        cost = model.load if base in _LOAD else model.store
        if model.pipelined_mem and prev_mem:
            cost = 1
        if base in _STORE and model.store_imm is not None and _imm_offset(op_str):
            cost = min(cost, model.store_imm)
        if writes_pc:
            cost += model.load_pc_extra
        return InsnCost(cost, True, writes_pc), "mem"
    if base in _DOUBLE:
        return InsnCost(model.multi_base + 2 // model.multi_per_cycle, True, False), "multi"
    if base in _MULTI:
        n = _reg_count(op_str, base)
        cost = model.multi_base + -(-n // model.multi_per_cycle)
        if writes_pc:
            cost += model.load_pc_extra
        return InsnCost(cost, True, writes_pc), "multi"
    if base in _MUL:
        return InsnCost(model.mul, False, False), "mul"
    if base in _DIV:
        return InsnCost(model.div if model.div is not None else 1, False, False), "div"
    if base in _FP_MAC:
        return InsnCost(model.fp_mac, False, False), "fp"
    if base in _FP_LONG:
        return InsnCost(model.fp_long, False, False), "fp"
    if base in _FP_MEM:
        return InsnCost(model.fp_mem, True, False), "mem"
    if base in _FP_MULTI:
        return InsnCost(model.multi_base + _reg_count(op_str, base), True, False), "multi"
    if base.startswith("v"):
        return InsnCost(model.fp, False, False), "fp"
    if model.dual_issue and prev_alu:
        return InsnCost(0, False, writes_pc), "alu-paired"
    return InsnCost(model.alu, False, writes_pc), "alu"


@dataclass(frozen=True)
class BlockCost:
    """Cost of one translated block: per-instruction cumulative cycles and load/store counts."""

    addresses: tuple[int, ...]
    cum_cycles: tuple[int, ...]  # cycles through the end of instruction i
    cum_mem: tuple[int, ...]
    mnemonics: tuple[str, ...]
    penalty: int  # extra cycles if the block's last instruction branches (next block not fall-through)
    fp: int = 0  # FPU instructions (power model)
    mul: int = 0  # multiply / MAC instructions (power model)
    flags: int = 0  # memmodel: bit 0 fetched through the flash cache; bits 8-15 ROM float op
    literals: tuple[int, ...] = ()  # flash reads of code pages charged on entry (memmodel.py)

    @property
    def cycles(self) -> int:
        return self.cum_cycles[-1] if self.cum_cycles else 0

    @property
    def insns(self) -> int:
        return len(self.addresses)

    @property
    def mem(self) -> int:
        return self.cum_mem[-1] if self.cum_mem else 0


def block_cost(model: CostModel, insns: Sequence[tuple[int, str, str]], wait_states: int = 0) -> BlockCost:
    """Cost of a block of (address, mnemonic, op_str); ``wait_states`` per instruction fetched."""
    cum_c: list[int] = []
    cum_m: list[int] = []
    total = mem = fp = mul = 0
    prev_mem = prev_alu = False
    last_writes_pc = False
    last_loads_pc = False
    prev_single = ""  # class of the previous instruction if it issued alone (M7 pairing)
    for i, (addr, mnem, ops) in enumerate(insns):
        cost, klass = insn_cost(model, mnem, ops, prev_mem, prev_alu and not model.dual_issue_mem)
        if model.dual_issue_mem:
            pairs = (prev_single == "alu" and klass in ("alu", "mem")) or (prev_single == "mem" and klass == "alu")
            if pairs and not cost.writes_pc:
                cost, prev_single = InsnCost(0, cost.is_mem, False), ""
            else:
                prev_single = klass if klass in ("alu", "mem") and not cost.writes_pc else ""
        if model.it_folding and i > 0 and addr - insns[i - 1][0] == 2 and base_mnemonic(mnem).startswith("it"):
            cost = InsnCost(0, False, False)
        total += cost.cycles + wait_states
        mem += int(cost.is_mem)
        fp += int(klass == "fp" or (klass in ("mem", "multi") and mnem.startswith("v")))
        mul += int(klass == "mul")
        cum_c.append(total)
        cum_m.append(mem)
        prev_mem = klass == "mem"
        prev_alu = klass == "alu"
        last_writes_pc = cost.writes_pc
        last_loads_pc = cost.writes_pc and (klass in ("mem", "multi") or base_mnemonic(mnem) in ("tbb", "tbh"))
    penalty = 0
    if last_writes_pc:
        penalty = model.branch_penalty
        if last_loads_pc and model.load_pc_penalty is not None:
            penalty = model.load_pc_penalty
    return BlockCost(
        tuple(a for a, _, _ in insns), tuple(cum_c), tuple(cum_m), tuple(m for _, m, _ in insns), penalty, fp, mul
    )
