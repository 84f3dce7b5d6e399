"""Cycles per MAC of the int8 conv and FC kernels, portable vs Cortex-M4 DSP path (and M0+ portable).

Each case is a one-layer model built by harness.codegen, linked into the QEMU test image
(firmware_templates/runtime/testing) and measured two ways:
  * estimated M4 cycles: the image runs on Unicorn (Cortex-M4 model) with a block hook that
    prices every executed instruction with harness.sim.cycles (the simulated board's cost table,
    an ESTIMATE: no wait states, no bus contention); counted from model_run() entry to return.
  * instructions: QEMU mps2-an386 with -icount shift=0 (SysTick ticks * 40, 40-instruction grain);
    QEMU has no Cortex-M0+ machine, so that column is empty for --core cortex-m0plus.
The last column is the model's arena (activations + scratch; the DSP conv's padded input copy is
part of its scratch).

Usage: .venv/bin/python benchmarks/kernels.py [--quick] [--numeric int8|uint8|qmn] [--core cortex-m0plus]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from capstone import CS_ARCH_ARM, CS_MODE_MCLASS, CS_MODE_THUMB, Cs
from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_INTR, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
from unicorn import arm_const as uca

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.codegen import generate, io
from harness.codegen.emulate import build_image, run_qemu
from harness.codegen.examples import GraphBuilder, quantize
from harness.ir import Artifact
from harness.sim.cycles import CORTEX_M0PLUS, CORTEX_M4, CostModel, block_cost


def count_model_run(elf: Path, core: str = "cortex-m4") -> list[tuple[int, int]]:
    """(instructions, estimated cycles) of every model_run() call in the image (Unicorn)."""
    model: CostModel = CORTEX_M0PLUS if core == "cortex-m0plus" else CORTEX_M4
    with open(elf, "rb") as fh:
        ef = ELFFile(fh)
        segs = [(s["p_paddr"], s.data()[: s["p_filesz"]], s["p_memsz"]) for s in ef.iter_segments()
                if s["p_type"] == "PT_LOAD"]
        syms = {s.name: s["st_value"] for s in ef.get_section_by_name(".symtab").iter_symbols() if s.name}
    uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
    uc.ctl_set_cpu_model(uca.UC_CPU_ARM_CORTEX_M0 if core == "cortex-m0plus" else uca.UC_CPU_ARM_CORTEX_M4)
    uc.mem_map(0x0, 4 << 20)
    uc.mem_map(0x20000000, 4 << 20)
    uc.mem_map(0xE000E000, 0x1000)  # SysTick/SCB: plain memory here
    for addr, data, _ in segs:
        uc.mem_write(addr, data)
    start = int.from_bytes(uc.mem_read(0, 8)[4:], "little")
    uc.reg_write(uca.UC_ARM_REG_SP, int.from_bytes(uc.mem_read(0, 4), "little"))
    cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB | CS_MODE_MCLASS)
    cache: dict[tuple[int, int], tuple[int, int, int]] = {}
    state = {"insns": 0, "cycles": 0, "prev_end": None, "prev_pen": 0, "ret": None, "t0": (0, 0)}
    runs: list[tuple[int, int]] = []
    entry = syms["model_run"] & ~1

    def on_block(uc: Uc, addr: int, size: int, _ud: object) -> None:
        if state["prev_end"] is not None and addr != state["prev_end"]:
            state["cycles"] += state["prev_pen"]
        key = (addr, size)
        if key not in cache:
            ins = [(i.address, i.mnemonic, i.op_str) for i in cs.disasm(bytes(uc.mem_read(addr, size)), addr)]
            bc = block_cost(model, ins)
            cache[key] = (bc.insns, bc.cycles, bc.penalty)
        if addr == entry:
            state["ret"] = uc.reg_read(uca.UC_ARM_REG_LR) & ~1
            state["t0"] = (state["insns"], state["cycles"])
        elif state["ret"] is not None and addr == state["ret"]:
            runs.append((state["insns"] - state["t0"][0], state["cycles"] - state["t0"][1]))
            state["ret"] = None
        n, c, pen = cache[key]
        state["insns"] += n
        state["cycles"] += c
        state["prev_end"], state["prev_pen"] = addr + size, pen

    def on_intr(uc: Uc, intno: int, _ud: object) -> None:
        pc = uc.reg_read(uca.UC_ARM_REG_PC)
        if uc.reg_read(uca.UC_ARM_REG_R0) == 0x18:  # semihosting SYS_EXIT
            uc.emu_stop()
        uc.reg_write(uca.UC_ARM_REG_PC, (pc + 2) | 1)  # skip the BKPT (SYS_WRITE0 output is ignored)

    uc.hook_add(UC_HOOK_BLOCK, on_block)
    uc.hook_add(UC_HOOK_INTR, on_intr)
    uc.emu_start(start | 1, 0xFFFFFFFF, timeout=300_000_000)
    return runs


def conv_case(cin: int, cout: int, k: int, hw: int) -> GraphBuilder:
    b = GraphBuilder(f"conv{k}x{k}_{cin}to{cout}_{hw}", (cin, hw, hw), seed=1)
    b.conv(cout, k, pad=k // 2)
    return b


def fc_case(n_in: int, n_out: int) -> GraphBuilder:
    b = GraphBuilder(f"fc_{n_in}to{n_out}", (n_in,), seed=1)
    b.linear(n_out)
    return b


def measure(b: GraphBuilder, numeric: str, dsp: bool, work: Path, core: str = "cortex-m4") -> dict:
    gf = b.build()
    x = np.random.default_rng(0).normal(size=(2, *gf.tensors["input"].shape)).astype(np.float32)
    g = quantize(gf, numeric, x)
    out = work / f"{gf.name}_{numeric}_{core}_{'dsp' if dsp else 'portable'}"
    gen = generate(Artifact(g), out, dsp=dsp)
    elf = build_image(gen, [io.encode_input(g, x[0])], out / "fw.elf", core=core, repeat=2)
    runs = count_model_run(elf, core)
    qemu = run_qemu(elf).instructions[-1] if core != "cortex-m0plus" else -1
    insns, cycles = runs[-1]  # second run: identical, nothing cold on an MCU anyway
    return {"case": gf.name, "numeric": numeric, "path": "dsp" if dsp else "portable", "macs": gen.macs,
            "cycles": cycles, "insns": insns, "qemu_insns": qemu,
            "cyc_per_mac": cycles / gen.macs, "ins_per_mac": insns / gen.macs, "arena": gen.arena_bytes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the 3x3 conv and one FC")
    ap.add_argument("--numeric", default="int8", choices=["int8", "uint8", "qmn"])
    ap.add_argument("--core", default="cortex-m4", choices=["cortex-m4", "cortex-m0plus"])
    args = ap.parse_args()
    cases = [conv_case(16, 32, 3, 16), fc_case(512, 64)]
    if not args.quick:
        cases[1:1] = [conv_case(32, 32, 5, 12), conv_case(32, 64, 3, 8)]
        cases.append(fc_case(1024, 10))
    with tempfile.TemporaryDirectory() as tmp:
        print(f"core {args.core}; cycles are estimates from harness.sim.cycles")
        print(f"{'case':24s} {'numeric':7s} {'path':8s} {'MACs':>9s} {'est.cycles':>11s} {'cyc/MAC':>8s} "
              f"{'instr':>10s} {'ins/MAC':>8s} {'qemu instr':>11s} {'arena B':>8s}")
        for b in cases:
            for dsp in (False, True) if args.core == "cortex-m4" else (False,):
                r = measure(b, args.numeric, dsp, Path(tmp), args.core)
                print(f"{r['case']:24s} {r['numeric']:7s} {r['path']:8s} {r['macs']:9d} {r['cycles']:11d} "
                      f"{r['cyc_per_mac']:8.2f} {r['insns']:10d} {r['ins_per_mac']:8.2f} {r['qemu_insns']:11d} "
                      f"{r['arena']:8d}")


if __name__ == "__main__":
    main()
