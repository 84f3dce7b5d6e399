"""Cycle cost tables (estimates from the Cortex-M4/M0+ TRMs) and the SysTick/DWT counter models."""

from __future__ import annotations

from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs

from harness.sim.cycles import CORTEX_M0PLUS, CORTEX_M4, CORTEX_M7, base_mnemonic, block_cost
from harness.sim.peripherals import Dwt, SysTick


def insns(code: bytes, addr: int = 0x100) -> list[tuple[int, str, str]]:
    cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
    return [(i.address, i.mnemonic, i.op_str) for i in cs.disasm(code, addr)]


# ldr r1,[r0]; ldr r2,[r0,#4]; ldr r3,[r0,#8]; adds r1,r1,r2; bx lr
LOADS_THEN_RETURN = bytes.fromhex("0168 4268 8368 8918 7047")
# push {r4,lr}; bl +0; pop {r4,pc}
CALL_SEQUENCE = bytes.fromhex("10b5 00f0 00f8 10bd")


def test_mnemonic_classes() -> None:
    assert [base_mnemonic(m) for m in ("bne", "bls", "ldrbeq.w", "muls", "vadd.f32", "pop")] == [
        "b",
        "b",
        "ldrb",
        "mul",
        "vadd",
        "pop",
    ]


def test_m4_pipelined_loads_and_branch_penalty() -> None:
    bc = block_cost(CORTEX_M4, insns(LOADS_THEN_RETURN))
    # 3 neighbouring LDRs = N+1 = 4, ADDS 1, BX 1; BX LR's target is known early: refill P=1
    assert bc.cum_cycles == (2, 3, 4, 5, 6)
    assert bc.mem == 3 and bc.penalty == 1


def test_m4_trm_load_store_rules() -> None:
    # str r1,[r0,#4] is always 1; str r1,[r0,r2] is 2; pop {r4,pc} refills P=3 (address from a load)
    store_imm, store_reg = (block_cost(CORTEX_M4, [i]) for i in insns(bytes.fromhex("4160 8150")))
    assert store_imm.cycles == 1 and store_reg.cycles == 2
    pop = block_cost(CORTEX_M4, insns(bytes.fromhex("10bd")))
    assert pop.cycles == 1 + 2 and pop.penalty == 3
    # cmp r0,#0 (16-bit); it eq; moveq r0,#1: the IT folds onto the CMP
    assert block_cost(CORTEX_M4, insns(bytes.fromhex("0028 08bf 0120"))).cum_cycles == (1, 1, 2)


def test_m7_pairs_alu_with_load() -> None:
    # adds r0,#1; ldr r1,[r2]; adds r3,#1; ldr r4,[r5]: two pairs; two loads never pair
    assert block_cost(CORTEX_M7, insns(bytes.fromhex("0130 1168 0133 2c68"))).cycles == 2
    assert block_cost(CORTEX_M7, insns(bytes.fromhex("1168 2c68"))).cycles == 2


def test_m0plus_call_costs_follow_trm() -> None:
    push, bl, pop = (block_cost(CORTEX_M0PLUS, [i]) for i in insns(CALL_SEQUENCE))
    assert push.cycles == 1 + 2  # PUSH 1+N
    assert bl.cycles + bl.penalty == 3  # BL 3
    assert pop.cycles + pop.penalty == 3 + 2  # POP {..,pc} 3+N


def test_flash_wait_states_per_instruction() -> None:
    plain = block_cost(CORTEX_M0PLUS, insns(LOADS_THEN_RETURN))
    slow = block_cost(CORTEX_M0PLUS, insns(LOADS_THEN_RETURN), wait_states=1)
    assert slow.cycles - plain.cycles == 5
    assert plain.cycles == 2 + 2 + 2 + 1 + 1  # no load pipelining on the M0+


def test_fpu_divide_and_dual_issue() -> None:
    # vdiv.f32 s0,s1,s2; vsqrt.f32 s0,s1; vadd.f32 s0,s1,s2; vldr s0,[r0]; sdiv r0,r1,r2
    code = bytes.fromhex("80ee 810a b1ee e00a 30ee 810a 90ed 000a 91fb f2f0")
    assert block_cost(CORTEX_M4, insns(code)).cum_cycles == (14, 28, 29, 31, 38)
    # adds r0,#1; adds r1,#1 issue together on the M7 estimate
    assert block_cost(CORTEX_M7, insns(bytes.fromhex("0130 0131"))).cycles == 1


def test_systick_counts_down_and_sets_countflag() -> None:
    st = SysTick()
    st.write(0x4, 999, now=0)
    st.write(0x8, 0, now=0)
    st.write(0x0, 0b111, now=100)
    assert st.value(101) == 999 and st.value(1100) == 0 and st.value(1101) == 999
    assert st.cycles_to_next_zero(150) == 950
    assert st.read(0x0, now=1099) >> 16 == 0
    assert st.read(0x0, now=1100) >> 16 == 1  # reached zero
    assert st.read(0x0, now=1101) >> 16 == 0  # cleared by the read


def test_dwt_cyccnt_counts_only_when_enabled() -> None:
    dwt = Dwt()
    dwt.write(0x4, 0, now=10)
    assert dwt.cyccnt(500) == 0
    dwt.write(0x0, 1, now=500)
    assert dwt.cyccnt(1500) == 1000
    dwt.write(0x0, 0, now=1500)
    assert dwt.cyccnt(9999) == 1000
