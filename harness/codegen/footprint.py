"""Per-layer storage choice and flash/MAC accounting, shared by ``generate`` and ``estimate``."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.codegen import sparse as sp
from harness.codegen.lower import ConvStep, Lowered, Step


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def storage(step: ConvStep, mode: str, dsp: bool = False) -> str:
    """'dense', 'dsp' (dense in the SMLAD layout, quantized only) or 'csr' for a conv/linear weight."""
    choice = sp.choose(step.weight, step.w_zp, mode)
    return "dsp" if choice == "dense" and dsp and step.rq != "float" else choice


def conv_const_bytes(step: ConvStep, store: str) -> int:
    """Flash bytes of everything a conv/linear emits: weights, bias, multipliers/shifts."""
    if store == "csr":
        w = sp.to_csr(step.weight, step.w_zp).nbytes
    elif store == "dsp":
        w = step.weight.shape[0] * _pad4(step.weight.shape[1]) * step.weight.itemsize
    else:
        w = sp.dense_bytes(step.weight)
    bias = 0 if not np.any(step.bias) else sp.array_bytes(step.bias)
    rq = 0 if step.rq == "float" else (4 * step.shift.size + (4 * step.mult.size if step.rq == "fixed" else 0))
    return w + bias + rq


def step_macs(step: Step) -> int:
    if isinstance(step, ConvStep):
        return step.macs
    return 0


def layer_table(lw: Lowered, sparse: str = "auto", dsp: bool = False) -> list[dict[str, Any]]:
    """One row per step: name, op, shape (output), storage (dense | csr), bytes (flash), macs, density,
    layout (rows, or dsp for dense weights in the SMLAD order)."""
    rows: list[dict[str, Any]] = []
    ops = {n.name: n.op for n in lw.graph.nodes}
    for st in lw.steps:
        row: dict[str, Any] = {"name": st.name, "op": ops[st.name], "shape": list(lw.graph.tensors[st.out].shape)}
        if isinstance(st, ConvStep):
            store = storage(st, sparse, dsp)
            nnz = int(np.count_nonzero(st.weight != st.w_zp))
            row.update(op=st.op, storage="csr" if store == "csr" else "dense", bytes=conv_const_bytes(st, store),
                       macs=st.macs, density=nnz / st.weight.size, layout="dsp" if store == "dsp" else "rows")
        else:
            row.update(storage="-", bytes=0, macs=0, density=None)
        rows.append(row)
    return rows
