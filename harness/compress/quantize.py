"""Post-training quantization of a float IR graph into the numeric modes of harness.ir, plus
quantization-aware fine-tuning (fake-quant with a straight-through estimator) in torch.

Layout written into the graph (see also the module docstring of harness.ir):
  uint8  activations: affine per tensor, dtype uint8, scale [s], zero_point [zp], zp in 0..255.
         weights: affine per tensor, uint8, q = clamp(round(w/s) + zp, 0, 255).
         biases: int32, scheme "symmetric", scale [s_in * s_w], zero_point [0], q = round(b / scale).
  int8   activations: affine per tensor, dtype int8, zp in -128..127.
         weights: symmetric per output channel, int8, axis 0, scale [s_c...], zero_point [0...],
         q = clamp(round(w / s_c), -127, 127).
         biases: int32, symmetric, axis 0, scale [s_in * s_c ...], zero_point [0 ...].
  qmn    every weight/activation: scheme "pow2", int8, frac_bits n (real = q * 2**-n),
         n = 7 - ceil(log2(max|x|)) (seed rule; weights from the tensor, activations from
         calibration), q = clamp(round(x * 2**n), -128, 127); scale [2**-n], zero_point [0] for
         convenience. Biases are int32 with frac_bits = in_frac + w_frac, so they add straight into
         the accumulator without a bias shift; the output right shift is in_frac + w_frac - out_frac.
Activation ranges come from min/max observers over calibration data and always include 0 (affine).
maxpool2d / avgpool2d / flatten / unfused relu(6) outputs reuse their input's parameters; fused
conv/linear/add outputs use the observed range after the activation; softmax outputs use [0, 1].
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from harness.compress import irexec
from harness.ir import Graph, QuantDtype, QuantParams, TensorInfo

PASS_THROUGH = ("maxpool2d", "avgpool2d", "flatten", "relu", "relu6")
QUANT_MODES = ("uint8", "int8", "qmn")


def observe_ranges(graph: Graph, x_calib: np.ndarray) -> dict[str, tuple[float, float]]:
    """Min/max of every activation tensor of ``graph`` over the calibration batch."""
    ranges: dict[str, tuple[float, float]] = {}

    def obs(name: str, t: torch.Tensor) -> None:
        lo, hi = float(t.min()), float(t.max())
        old = ranges.get(name)
        ranges[name] = (min(lo, old[0]), max(hi, old[1])) if old else (lo, hi)

    irexec.run(graph, x_calib, observe=obs)
    return ranges


def affine_params(lo: float, hi: float, dtype: QuantDtype) -> QuantParams:
    qmin, qmax = irexec.QMIN_QMAX[dtype]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qmax - qmin) or 1e-8
    zp = int(np.clip(round(qmin - lo / scale), qmin, qmax))
    return QuantParams("affine", dtype, [float(scale)], [zp])


def pow2_frac(max_abs: float, bits: int = 8) -> int:
    """Seed rule: frac = (bits - 1) - ceil(log2(max|x|))."""
    if max_abs <= 0:
        return bits - 1
    return (bits - 1) - math.ceil(math.log2(max_abs))


def pow2_params(max_abs: float, dtype: QuantDtype = "int8") -> QuantParams:
    n = pow2_frac(max_abs)
    return QuantParams("pow2", dtype, [2.0**-n], [0], frac_bits=n)


def activation_params(graph: Graph, ranges: dict[str, tuple[float, float]], numeric: str) -> dict[str, QuantParams]:
    params: dict[str, QuantParams] = {}

    def make(lo: float, hi: float) -> QuantParams:
        if numeric == "qmn":
            return pow2_params(max(abs(lo), abs(hi)))
        return affine_params(lo, hi, "uint8" if numeric == "uint8" else "int8")

    for name in graph.inputs:
        params[name] = make(*ranges[name])
    for n in graph.nodes:
        out = n.outputs[0]
        if n.op in PASS_THROUGH:
            params[out] = params[n.inputs[0]]
        elif n.op == "softmax":
            params[out] = make(0.0, 1.0)
        else:
            params[out] = make(*ranges[out])
    return params


def quantize_weight(w: np.ndarray, numeric: str) -> tuple[np.ndarray, QuantParams]:
    if numeric == "uint8":
        q = affine_params(float(w.min()), float(w.max()), "uint8")
        s, zp = q.scale[0], q.zero_point[0]
        return np.clip(np.round(w / s) + zp, 0, 255).astype(np.uint8), q
    if numeric == "int8":
        max_abs = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        scale = np.where(max_abs > 0, max_abs / 127.0, 1.0)
        shape = (-1,) + (1,) * (w.ndim - 1)
        qw = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        return qw, QuantParams("symmetric", "int8", [float(s) for s in scale], [0] * len(scale), axis=0)
    max_abs = float(np.abs(w).max())
    return np.clip(np.round(w * 2.0 ** pow2_frac(max_abs)), -128, 127).astype(np.int8), pow2_params(max_abs)


def quantize_bias(b: np.ndarray, in_q: QuantParams, w_q: QuantParams) -> tuple[np.ndarray, QuantParams]:
    lo, hi = irexec.QMIN_QMAX["int32"]
    if w_q.scheme == "pow2":
        n = (in_q.frac_bits or 0) + (w_q.frac_bits or 0)
        qb = np.clip(np.round(b.astype(np.float64) * 2.0**n), lo, hi).astype(np.int32)
        return qb, QuantParams("pow2", "int32", [2.0**-n], [0], frac_bits=n)
    scale = np.asarray(w_q.scale, dtype=np.float64) * in_q.scale[0]
    qb = np.clip(np.round(b.astype(np.float64) / scale), lo, hi).astype(np.int32)
    axis = 0 if len(scale) > 1 else None
    return qb, QuantParams("symmetric", "int32", [float(s) for s in scale], [0] * len(scale), axis=axis)


def quantize_graph(graph: Graph, x_calib: np.ndarray, numeric: str) -> Graph:
    """A quantized copy of float ``graph`` (post-training, min/max calibration on ``x_calib``)."""
    if numeric not in QUANT_MODES:
        raise ValueError(f"unknown numeric mode {numeric!r}")
    act = activation_params(graph, observe_ranges(graph, x_calib), numeric)
    g = copy.deepcopy(graph)
    g.numeric = numeric  # type: ignore[assignment]
    act_dtype = "uint8" if numeric == "uint8" else "int8"
    for name, q in act.items():
        g.tensors[name].quant, g.tensors[name].dtype = q, act_dtype
    for n in g.nodes:
        if n.op not in ("conv2d", "linear"):
            continue
        wname = n.inputs[1]
        qw, wq = quantize_weight(graph.constants[wname], numeric)
        _set_const(g, wname, qw, wq)
        if len(n.inputs) > 2:
            qb, bq = quantize_bias(graph.constants[n.inputs[2]], act[n.inputs[0]], wq)
            _set_const(g, n.inputs[2], qb, bq)
    return g


def _set_const(g: Graph, name: str, arr: np.ndarray, q: QuantParams) -> None:
    old = g.tensors[name]
    g.constants[name] = arr
    g.tensors[name] = TensorInfo(name, list(arr.shape), str(arr.dtype), q, old.sparsity)


# ------------------------------------------------------------------------- quantization-aware training


def _ste(x: torch.Tensor, fq: torch.Tensor) -> torch.Tensor:
    return x + (fq - x).detach()


def fake_quant_weight(w: torch.Tensor, numeric: str) -> torch.Tensor:
    """Torch fake-quant of a weight matching ``quantize_weight`` (straight-through gradient)."""
    with torch.no_grad():
        if numeric == "uint8":
            lo, hi = min(float(w.min()), 0.0), max(float(w.max()), 0.0)
            s = (hi - lo) / 255 or 1e-8
            zp = float(np.clip(round(-lo / s), 0, 255))
            fq = (torch.clamp(torch.round(w / s) + zp, 0, 255) - zp) * s
        elif numeric == "int8":
            s_ch = w.flatten(1).abs().max(1).values.clamp_min(1e-12) / 127
            s_ch = s_ch.reshape(-1, *([1] * (w.dim() - 1)))
            fq = torch.clamp(torch.round(w / s_ch), -127, 127) * s_ch
        else:
            n = pow2_frac(float(w.abs().max()))
            fq = torch.clamp(torch.round(w * 2.0**n), -128, 127) * 2.0**-n
    return _ste(w, fq)


class _FakeQuantWeight(nn.Module):
    def __init__(self, numeric: str):
        super().__init__()
        self.numeric = numeric

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return fake_quant_weight(w, self.numeric)


class _ActObserver:
    """EMA min/max of a layer output, fake-quantized with a straight-through estimator."""

    def __init__(self, numeric: str, momentum: float = 0.9):
        self.numeric, self.momentum = numeric, momentum
        self.lo: float | None = None
        self.hi = 0.0

    def __call__(self, _m: nn.Module, _i: object, out: torch.Tensor) -> torch.Tensor:
        lo, hi = float(out.detach().min()), float(out.detach().max())
        if self.lo is None:
            self.lo, self.hi = lo, hi
        else:
            self.lo = self.momentum * self.lo + (1 - self.momentum) * lo
            self.hi = self.momentum * self.hi + (1 - self.momentum) * hi
        if self.numeric == "qmn":
            q = pow2_params(max(abs(self.lo), abs(self.hi)))
        else:
            q = affine_params(self.lo, self.hi, "uint8" if self.numeric == "uint8" else "int8")
        return _ste(out, irexec.fake_quant(out.detach(), q))


def qat_finetune(
    model: nn.Module, numeric: str, train_fn: Callable[[nn.Module], nn.Module]
) -> nn.Module:
    """Fine-tune ``model`` with fake-quantized weights (per the numeric mode) and fake-quantized
    conv/linear outputs, then strip the fake-quant so PTQ of the result lands on the trained grid.

    Simplification (documented): activations are fake-quantized at conv/linear outputs before a
    following ReLU; the exported, fused tensor is quantized after it (its grid is only finer)."""
    from torch.nn.utils import parametrize

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = []
    for m in layers:
        parametrize.register_parametrization(m, "weight", _FakeQuantWeight(numeric))
        handles.append(m.register_forward_hook(_ActObserver(numeric)))
    try:
        model = train_fn(model)
    finally:
        for h in handles:
            h.remove()
        for m in layers:
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    return model.eval()
