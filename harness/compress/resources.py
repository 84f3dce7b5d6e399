"""A simple, honest resource estimate of an IR graph: flash for constants, peak activation RAM, MACs.

Flash = bytes of all constants at the graph's numeric type (weights 4 B float / 1 B int8, biases
4 B), no code or CRS encoding. RAM = the largest sum of live activation buffers at any node when
ops run in graph order, each buffer freed after its last reader and no op working in place (an
upper bound for a first-fit planner like the paper's). The code generator's planner may replace it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from harness.ir import Graph

ITEMSIZE = {"float32": 4, "uint8": 1, "int8": 1, "int16": 2, "int32": 4}


@dataclass
class Resources:
    flash_bytes: int
    ram_bytes: int
    macs: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def activation_itemsize(numeric: str) -> int:
    return 4 if numeric == "float32" else 1


def weight_bytes(graph: Graph, numeric: str | None = None) -> int:
    """Constant bytes; with ``numeric`` given, a float graph is costed as if quantized to it."""
    numeric = numeric or graph.numeric
    if graph.numeric != "float32":
        return int(sum(a.size * ITEMSIZE[graph.tensors[k].dtype] for k, a in graph.constants.items()))
    if numeric == "float32":
        return int(sum(a.size * 4 for a in graph.constants.values()))
    return int(sum(a.size * (4 if a.ndim == 1 else 1) for a in graph.constants.values()))  # biases stay 32-bit


def peak_activation_bytes(graph: Graph, numeric: str | None = None) -> int:
    size = activation_itemsize(numeric or graph.numeric)
    last_use: dict[str, int] = {}
    for i, n in enumerate(graph.nodes):
        for t in n.inputs:
            last_use[t] = i
    for t in graph.outputs:
        last_use[t] = len(graph.nodes)
    elems = {t: int(np.prod(graph.tensors[t].shape)) for t in graph.activation_names()}
    live = set(graph.inputs)
    peak = sum(elems[t] for t in live)
    for i, n in enumerate(graph.nodes):
        live |= set(n.outputs)
        peak = max(peak, sum(elems[t] for t in live))
        live = {t for t in live if last_use.get(t, -1) > i}
    return peak * size


def macs(graph: Graph) -> int:
    """Multiply-accumulates of conv and linear layers (conv: oh*ow*oc*kh*kw*ic/groups)."""
    total = 0
    for n in graph.nodes:
        if n.op == "conv2d":
            oc, icg, kh, kw = graph.tensors[n.inputs[1]].shape
            _, oh, ow = graph.tensors[n.outputs[0]].shape
            total += oh * ow * oc * kh * kw * icg
        elif n.op == "linear":
            out, inp = graph.tensors[n.inputs[1]].shape
            total += out * inp
    return int(total)


def estimate(graph: Graph, numeric: str | None = None) -> Resources:
    return Resources(weight_bytes(graph, numeric), peak_activation_bytes(graph, numeric), macs(graph))
