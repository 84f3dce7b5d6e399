"""Run an IR graph with torch functional ops: float execution, calibration ranges, and a fake-quant
simulation of the quantized graph.

This is not the bit-exact integer reference (that lives in harness.codegen.reference); it gives the
compression stage activation ranges that match the *exported* tensors (post folding/fusion) and a
fallback quantized-accuracy estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from harness.ir import Graph, Node, QuantParams

QMIN_QMAX = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}


def _act(y: torch.Tensor, act: str | None) -> torch.Tensor:
    if act == "relu":
        return torch.relu(y)
    if act == "relu6":
        return torch.clamp(y, 0.0, 6.0)
    return y


def _avgpool(x: torch.Tensor, a: dict) -> torch.Tensor:
    return F.avg_pool2d(x, a["kernel"], a["stride"], a["padding"], count_include_pad=False)


def _maxpool(x: torch.Tensor, a: dict) -> torch.Tensor:
    return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"])


def _apply(node: Node, args: list[torch.Tensor]) -> torch.Tensor:
    a, op = node.attrs, node.op
    if op == "conv2d":
        y = F.conv2d(args[0], args[1], args[2] if len(args) > 2 else None, a["stride"], a["padding"], a["dilation"], a["groups"])
        return _act(y, a.get("act"))
    if op == "linear":
        return _act(F.linear(args[0], args[1], args[2] if len(args) > 2 else None), a.get("act"))
    if op == "add":
        return _act(args[0] + args[1], a.get("act"))
    if op == "maxpool2d":
        return _maxpool(args[0], a)
    if op == "avgpool2d":
        return _avgpool(args[0], a)
    if op in ("relu", "relu6"):
        return _act(args[0], op)
    if op == "flatten":
        return torch.flatten(args[0], 1)
    if op == "softmax":
        return torch.softmax(args[0], dim=1)
    raise ValueError(f"irexec: unsupported op {op!r}")


def fake_quant(x: torch.Tensor, q: QuantParams) -> torch.Tensor:
    """Quantize-dequantize ``x`` (batch first) with per-tensor activation parameters."""
    lo, hi = QMIN_QMAX[q.dtype]
    if q.scheme == "pow2":
        s = 2.0 ** -(q.frac_bits or 0)
        return torch.clamp(torch.round(x / s), lo, hi) * s
    s, zp = q.scale[0], q.zero_point[0]
    return (torch.clamp(torch.round(x / s) + zp, lo, hi) - zp) * s


def dequantize_constant(arr: np.ndarray, q: QuantParams | None) -> np.ndarray:
    """Real values of a stored constant (per-tensor or per-channel along ``q.axis``)."""
    if q is None:
        return arr.astype(np.float32)
    if q.scheme == "pow2":
        return (arr.astype(np.float64) * 2.0 ** -(q.frac_bits or 0)).astype(np.float32)
    shape = [1] * arr.ndim
    if q.axis is not None and len(q.scale) > 1:
        shape[q.axis] = -1
    scale = np.asarray(q.scale, dtype=np.float64).reshape(shape)
    zp = np.asarray(q.zero_point or [0], dtype=np.float64).reshape(shape if len(q.zero_point) > 1 else [1] * arr.ndim)
    return ((arr.astype(np.float64) - zp) * scale).astype(np.float32)


def run(
    graph: Graph,
    x: np.ndarray,
    *,
    fake_quantize: bool = False,
    observe: Callable[[str, torch.Tensor], None] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Outputs of ``graph`` for a batch ``x`` (N, ...). With ``fake_quantize`` every activation is
    rounded to its QuantParams and constants are dequantized from their stored integers."""
    consts = {
        k: torch.from_numpy(dequantize_constant(v, graph.tensors[k].quant if fake_quantize else None))
        for k, v in graph.constants.items()
    }
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            env: dict[str, torch.Tensor] = dict(consts)
            for name in graph.inputs:
                env[name] = _maybe_fq(graph, name, torch.from_numpy(np.asarray(x[i : i + batch_size], np.float32)), fake_quantize)
                if observe:
                    observe(name, env[name])
            for node in graph.nodes:
                y = _apply(node, [env[t] for t in node.inputs])
                env[node.outputs[0]] = _maybe_fq(graph, node.outputs[0], y, fake_quantize)
                if observe:
                    observe(node.outputs[0], y)
            outs.append(env[graph.outputs[0]].numpy())
    return np.concatenate(outs)


def _maybe_fq(graph: Graph, name: str, y: torch.Tensor, enabled: bool) -> torch.Tensor:
    q = graph.tensors[name].quant
    return fake_quant(y, q) if enabled and q is not None else y
