"""Static activation-memory planning: every activation gets a fixed offset in one arena.

Lifetimes come from the topological order (step index of the producer to the last consumer).
The graph input and output stay live for the whole run, so ``model_input()`` survives repeated
``model_run()`` calls and ``model_output()`` stays valid afterwards. Each conv/linear also owns
an im2col scratch buffer that lives for its own step only.

Aliasing: flatten's output is its input (same bytes). An element-wise relu/relu6/add writes in
place over an input whose last use is that step (read and write of element i happen in the same
iteration). :func:`check_plan` verifies all of it by simulating which tensor owns every byte.

Placement is first-fit with alignment, done twice: (a) by execution order, the seed-002 planner
(allocate at each step at the lowest free offset) and (b) by size descending (TFLM's greedy
planner, usually tighter because big tensors are packed first). The smaller arena wins; both are
bounded by the naive sum of all buffer sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.codegen import footprint
from harness.codegen.lower import (
    ACT_DTYPE,
    AddStep,
    AliasStep,
    ClampStep,
    ConvStep,
    Lowered,
    PoolStep,
    Step,
    lower,
    numel,
)
from harness.ir import Graph

ALIGN = 4


@dataclass
class Plan:
    offsets: dict[str, int]  # every activation (aliases included) and "scratch:<step>" buffer
    sizes: dict[str, int]
    lifetimes: dict[str, tuple[int, int]]  # root buffers only
    root: dict[str, str]  # tensor -> buffer it lives in
    arena_bytes: int
    naive_bytes: int
    strategy: str
    scratch: dict[str, str] = field(default_factory=dict)  # step name -> scratch buffer name


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def step_io(step: Step) -> tuple[list[str], list[str]]:
    if isinstance(step, AddStep):
        return list(step.inp), [step.out]
    return [step.inp], [step.out]


def scratch_bytes(step: ConvStep, numeric: str, dsp: bool = False, csr: bool = False) -> int:
    """im2col scratch: two int16 columns padded to a multiple of 4 (four int32 columns for dense
    natural-layout weights and >= 4 output pixels: dense_quads in nnrt_conv_q.c) or one float
    column (two for CSR weights and >= 2 output pixels: nnrt_float.c walks each row once for a
    pixel pair).

    dsp: the layer runs the fast DSP conv of nnrt_conv_q.c (DSP weight layout and >= 2 output
    pixels): interleaved column pair and offset table (4 kp bytes each), accumulators (8 bytes per
    output channel of a group) plus, if the layer pads, a zero-point padded band of one group's
    input: min(s_h + (k_h - 1) d_h + 1, padded height) rows (NNRT_DSP_SCRATCH_BYTES in nnrt.h)."""
    if numeric == "float32":
        pairs = csr and step.out_shape[1] * step.out_shape[2] >= 2
        return 4 * step.k * (2 if pairs else 1)
    kp = (step.k + 3) & ~3
    c, h, w = step.in_shape
    if dsp and step.out_shape[1] * step.out_shape[2] >= 2:
        hp, wp = h + 2 * step.padding[0], w + 2 * step.padding[1]
        rows = min(step.stride[0] + (step.kernel[0] - 1) * step.dilation[0] + 1, hp)
        padded = _align(c // step.groups * rows * wp) if any(step.padding) else 0
        return 8 * kp + 8 * (step.out_shape[0] // step.groups) + padded
    if not dsp and not csr and step.out_shape[1] * step.out_shape[2] >= 4:
        return 4 * 4 * kp  # four int32 columns: nnrt_conv_q.c dense_quads
    return 2 * 2 * kp


def _first_fit(order: list[str], sizes: dict[str, int], life: dict[str, tuple[int, int]]) -> dict[str, int]:
    placed: dict[str, int] = {}
    for b in order:
        s0, e0 = life[b]
        busy = sorted(
            (placed[o], placed[o] + sizes[o]) for o in placed if life[o][0] <= e0 and s0 <= life[o][1]
        )
        off = 0
        for lo, hi in busy:
            if off + sizes[b] <= lo:
                break
            off = max(off, _align(hi))
        placed[b] = off
    return placed


def plan(lw: Lowered, dsp: bool = False, sparse: str = "auto") -> Plan:
    """dsp/sparse: as in ``generate`` (they decide which conv layers need the fast DSP scratch)."""
    g = lw.graph
    itemsize = np.dtype(ACT_DTYPE[g.numeric]).itemsize
    n_steps = len(lw.steps)
    root: dict[str, str] = {lw.input: lw.input}
    start: dict[str, int] = {lw.input: -1}
    end: dict[str, int] = {lw.input: n_steps}
    sizes: dict[str, int] = {lw.input: numel(g.tensors[lw.input].shape) * itemsize}
    last_use: dict[str, int] = {}
    for i, st in enumerate(lw.steps):
        for t in step_io(st)[0]:
            last_use[t] = i
    scratch: dict[str, str] = {}
    for i, st in enumerate(lw.steps):
        ins, outs = step_io(st)
        for t in ins:
            r = root[t]
            end[r] = max(end[r], i)
        out = outs[0]
        inplace = None
        if isinstance(st, AliasStep):
            inplace = root[st.inp]
        elif isinstance(st, ClampStep | AddStep):
            for t in ins:
                r = root[t]
                alive_later = any(last_use.get(a, -1) > i for a in root if root[a] == r)
                if r != lw.input and not alive_later and sizes[r] == numel(g.tensors[out].shape) * itemsize:
                    inplace = r
                    break
        if inplace is not None:
            root[out] = inplace
        else:
            root[out] = out
            start[out], end[out] = i, i
            sizes[out] = numel(g.tensors[out].shape) * itemsize
        if isinstance(st, ConvStep):
            name = f"scratch:{st.name}"
            scratch[st.name] = name
            root[name] = name
            start[name], end[name] = i, i
            storage = footprint.storage(st, sparse, dsp)
            sizes[name] = scratch_bytes(st, g.numeric, storage == "dsp", storage == "csr")
    end[root[lw.output]] = n_steps
    for t, r in root.items():
        if t in last_use:
            end[r] = max(end[r], last_use[t])
    buffers = [b for b in sizes]
    life = {b: (start[b], end[b]) for b in buffers}
    naive = sum(_align(sizes[b]) for b in buffers)
    best: tuple[int, str, dict[str, int]] | None = None
    for strategy, order in (
        ("order", sorted(buffers, key=lambda b: (life[b][0], -sizes[b]))),
        ("size", sorted(buffers, key=lambda b: (-sizes[b], life[b][0]))),
    ):
        offs = _first_fit(order, sizes, life)
        arena = _align(max((offs[b] + sizes[b] for b in buffers), default=0))
        if best is None or arena < best[0]:
            best = (arena, strategy, offs)
    assert best is not None
    arena, strategy, offs = best
    offsets = {t: offs[r] for t, r in root.items()}
    all_sizes = {t: sizes[r] if t == r else numel(g.tensors[t].shape) * itemsize for t, r in root.items()}
    return Plan(offsets, all_sizes, life, root, arena, naive, strategy, scratch)


def check_plan(lw: Lowered, p: Plan) -> None:
    """Brute force: simulate which tensor owns each arena byte; raise AssertionError on a clobber."""
    owner = np.full(p.arena_bytes, -1, dtype=np.int64)
    ids: dict[str, int] = {}
    content: dict[str, str] = {}

    def region(t: str) -> slice:
        off, size = p.offsets[t], p.sizes[t]
        assert off % ALIGN == 0, f"{t} misaligned at {off}"
        assert off >= 0 and off + size <= p.arena_bytes, f"{t} outside the arena"
        return slice(off, off + size)

    def write(t: str) -> None:
        owner[region(t)] = ids.setdefault(content.get(t, t), len(ids))

    def intact(t: str, when: str) -> None:
        c = content.get(t, t)
        assert c in ids and np.all(owner[region(t)] == ids[c]), f"{t} was overwritten {when}"

    write(lw.input)
    for st in lw.steps:
        ins, outs = step_io(st)
        out = outs[0]
        for t in ins:
            intact(t, f"before {st.name}")
        if isinstance(st, AliasStep):
            assert region(out) == region(st.inp), f"{st.name}: flatten must alias its input"
            content[out] = content.get(st.inp, st.inp)
            continue
        if st.name in p.scratch:
            write(p.scratch[st.name])
            for t in ins:
                intact(t, f"by the scratch of {st.name}")
        ro = region(out)
        for t in ins:
            ri = region(t)
            if ro.start < ri.stop and ri.start < ro.stop:
                assert isinstance(st, ClampStep | AddStep) and ro == ri, f"{st.name}: output overlaps input {t}"
        write(out)
        if st.name in p.scratch:
            intact(p.scratch[st.name], f"by the output of {st.name}")
        for t in ins:
            if region(t) != ro:
                intact(t, f"by the output of {st.name}")
    intact(lw.input, "at the end (the input must persist)")
    intact(lw.output, "at the end")


def estimate(graph: Graph, sparse: str = "auto", dsp: bool = False) -> dict[str, int]:
    """Footprint before compiling: flash bytes of constants, arena bytes, MACs."""
    lw = lower(graph)
    layers = footprint.layer_table(lw, sparse=sparse, dsp=dsp)
    return {
        "weights_bytes": sum(r["bytes"] for r in layers),
        "arena_bytes": plan(lw, dsp=dsp, sparse=sparse).arena_bytes,
        "macs": sum(r["macs"] for r in layers),
    }


__all__ = ["ALIGN", "Plan", "PoolStep", "check_plan", "estimate", "plan", "scratch_bytes"]
