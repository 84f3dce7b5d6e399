"""Lower an IR graph to executable steps with every integer parameter resolved.

The reference executor and the C emitter both consume these steps, so the derived constants
(requantization multipliers, aligned biases, clamp ranges) exist exactly once. The arithmetic
itself is specified in :mod:`harness.codegen.reference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.codegen.fixedpoint import DTYPE_RANGE, INT32_MAX, INT32_MIN, pow2_shift, quantize_multiplier
from harness.ir import Graph, Node, QuantParams, TensorInfo

FLOAT_MAX = float(np.finfo(np.float32).max)
ACT_DTYPE = {"float32": "float32", "uint8": "uint8", "int8": "int8", "qmn": "int8"}
ADD_LEFT_SHIFT = 20  # TFLM add: inputs are scaled by 2**20 before rescaling


@dataclass
class ConvStep:
    """conv2d or linear as a grouped matrix product over im2col columns (CHW, K = Cin/g*kh*kw)."""

    name: str
    op: str  # conv2d | linear
    inp: str
    out: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    weight: np.ndarray  # (O, K), stored dtype
    bias: np.ndarray  # (O,), int32 aligned to the accumulator, or float32
    in_zp: int = 0
    w_zp: int = 0
    out_zp: int = 0
    rq: str = "float"  # float | fixed | pow2
    mult: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32))
    act_min: float = -FLOAT_MAX
    act_max: float = FLOAT_MAX

    @property
    def k(self) -> int:
        return int(self.weight.shape[1])

    @property
    def macs(self) -> int:
        return int(self.out_shape[0] * self.out_shape[1] * self.out_shape[2] * self.k)


@dataclass
class PoolStep:
    name: str
    op: str  # maxpool2d | avgpool2d
    inp: str
    out: str
    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass
class AddStep:
    name: str
    inp: tuple[str, str]
    out: str
    n: int
    rq: str  # float | fixed | pow2
    a_zp: int = 0
    b_zp: int = 0
    out_zp: int = 0
    a_mult: int = 0
    a_shift: int = 0  # fixed: exponent; pow2: left shift of a
    b_mult: int = 0
    b_shift: int = 0
    out_mult: int = 0
    out_shift: int = 0  # fixed: exponent; pow2: right shift of the sum
    act_min: float = -FLOAT_MAX
    act_max: float = FLOAT_MAX


@dataclass
class ClampStep:
    """Standalone relu/relu6: a clamp in the stored domain (may run in place)."""

    name: str
    inp: str
    out: str
    n: int
    act_min: float
    act_max: float


@dataclass
class AliasStep:
    """flatten: CHW memory is already C-major flattened, so the output aliases the input."""

    name: str
    inp: str
    out: str


Step = ConvStep | PoolStep | AddStep | ClampStep | AliasStep


@dataclass
class Lowered:
    graph: Graph
    steps: list[Step]
    input: str
    output: str  # tensor the device returns (the softmax input when softmax is last)
    host_softmax: bool


def chw(shape: list[int] | tuple[int, ...]) -> tuple[int, int, int]:
    """Per-sample shape as (C, H, W); vectors are (N, 1, 1)."""
    s = list(shape)
    if len(s) == 1:
        return (s[0], 1, 1)
    if len(s) == 3:
        return (s[0], s[1], s[2])
    raise ValueError(f"unsupported activation shape {shape}")


def numel(shape: list[int] | tuple[int, ...]) -> int:
    return int(np.prod(shape)) if len(shape) else 1


def _scale(q: QuantParams | None, what: str) -> list[float]:
    if q is None or not q.scale:
        raise ValueError(f"{what}: missing QuantParams scale")
    return [float(s) for s in q.scale]


def _zp(q: QuantParams | None) -> int:
    if q is None or not q.zero_point:
        return 0
    zps = {int(z) for z in q.zero_point}
    if len(zps) != 1:
        raise ValueError("per-channel zero points are not supported")
    return zps.pop()


def _frac(t: TensorInfo) -> int:
    if t.quant is None or t.quant.frac_bits is None:
        raise ValueError(f"tensor {t.name!r}: qmn mode needs QuantParams.frac_bits")
    return int(t.quant.frac_bits)


def act_range(numeric: str, t: TensorInfo, act: str | None) -> tuple[float, float]:
    """Clamp bounds in the stored domain: dtype saturation intersected with a fused ReLU/ReLU6."""
    if act not in (None, "relu", "relu6"):
        raise ValueError(f"unsupported fused activation {act!r}")
    if numeric == "float32":
        return (0.0 if act else -FLOAT_MAX, 6.0 if act == "relu6" else FLOAT_MAX)
    lo, hi = DTYPE_RANGE[ACT_DTYPE[numeric]]
    if numeric == "qmn":
        zero, six = 0, math.floor(6.0 * 2.0 ** _frac(t) + 0.5)
    else:
        zero = _zp(t.quant)
        six = zero + math.floor(6.0 / _scale(t.quant, t.name)[0] + 0.5)
    if act:
        lo = max(lo, zero)
    if act == "relu6":
        hi = min(hi, six)
    return (lo, hi)


def _check_act_dtype(g: Graph, name: str) -> None:
    want = ACT_DTYPE[g.numeric]
    if g.tensors[name].dtype != want:
        raise ValueError(f"tensor {name!r} is {g.tensors[name].dtype}, {g.numeric} mode needs {want}")


def _bias(g: Graph, node: Node, out_c: int, acc_scale: np.ndarray | None, acc_frac: int | None) -> np.ndarray:
    """Bias aligned to the accumulator: int32 at scale s_in*s_w[c] (affine) or frac in+w (qmn)."""
    if len(node.inputs) < 3:
        return np.zeros(out_c, np.float32 if g.numeric == "float32" else np.int32)
    b = np.asarray(g.constants[node.inputs[2]]).reshape(-1)
    info = g.tensors[node.inputs[2]]
    if g.numeric == "float32":
        return b.astype(np.float32)
    if g.numeric == "qmn":
        assert acc_frac is not None
        if np.issubdtype(b.dtype, np.floating):
            v = np.floor(b.astype(np.float64) * 2.0**acc_frac + 0.5)
        else:
            lshift = acc_frac - _frac(info)
            v = pow2_shift(b.astype(np.int64), -lshift)
    else:
        assert acc_scale is not None
        if np.issubdtype(b.dtype, np.floating):
            v = np.round(b.astype(np.float64) / acc_scale)
        else:
            bs = np.broadcast_to(np.asarray(_scale(info.quant, info.name)), acc_scale.shape)
            if np.allclose(bs, acc_scale, rtol=1e-6, atol=0):
                v = b.astype(np.int64)
            else:
                v = np.round((b.astype(np.float64) - _zp(info.quant)) * bs / acc_scale)
    return np.clip(v, INT32_MIN, INT32_MAX).astype(np.int32)


def _spatial(in_shape: tuple[int, int, int], kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Output H, W (floor mode, like PyTorch's default)."""
    h, w = ((in_shape[1 + i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(2))
    return h, w


def _lower_conv(g: Graph, node: Node) -> ConvStep:
    x, w_name = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    for t in (x, out):
        _check_act_dtype(g, t)
    w = np.asarray(g.constants[w_name])
    in_shape, out_shape = chw(g.tensors[x].shape), chw(g.tensors[out].shape)
    a = node.attrs
    if node.op == "conv2d":
        kernel = (int(w.shape[2]), int(w.shape[3]))
        stride = tuple(a.get("stride", [1, 1]))
        padding = tuple(a.get("padding", [0, 0]))
        dilation = tuple(a.get("dilation", [1, 1]))
        groups = int(a.get("groups", 1))
    else:
        in_shape = (numel(g.tensors[x].shape), 1, 1)
        kernel, stride, padding, dilation, groups = (1, 1), (1, 1), (0, 0), (1, 1), 1
    o = int(w.shape[0])
    w2 = w.reshape(o, -1)
    if in_shape[0] % groups or o % groups or w2.shape[1] != in_shape[0] // groups * kernel[0] * kernel[1]:
        raise ValueError(f"node {node.name!r}: weight shape {w.shape} does not fit input {in_shape}")
    want = (o, *_spatial(in_shape, kernel, stride, padding, dilation))
    if tuple(out_shape) != want:
        raise ValueError(f"node {node.name!r}: output shape {out_shape} != {want} computed from the attributes")
    step = ConvStep(
        name=node.name, op=node.op, inp=x, out=out, in_shape=in_shape, out_shape=out_shape,
        kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
        weight=w2, bias=np.zeros(o, np.float32),
    )
    tx, tw, to = g.tensors[x], g.tensors[w_name], g.tensors[out]
    step.act_min, step.act_max = act_range(g.numeric, to, a.get("act"))
    if g.numeric == "float32":
        step.weight = w2.astype(np.float32)
        step.bias = _bias(g, node, o, None, None)
        return step
    want_w = "uint8" if g.numeric == "uint8" else "int8"
    if w2.dtype != np.dtype(want_w):
        raise ValueError(f"node {node.name!r}: {g.numeric} weights must be stored as {want_w}, got {w2.dtype}")
    if g.numeric == "qmn":
        fi, fw, fo = _frac(tx), _frac(tw), _frac(to)
        step.rq = "pow2"
        step.shift = np.array([fi + fw - fo], np.int32)
        step.bias = _bias(g, node, o, None, fi + fw)
        return step
    s_in, s_out = _scale(tx.quant, x)[0], _scale(to.quant, out)[0]
    s_w = np.broadcast_to(np.asarray(_scale(tw.quant, w_name)), (o,)).astype(np.float64)
    step.in_zp, step.w_zp, step.out_zp = _zp(tx.quant), _zp(tw.quant), _zp(to.quant)
    if g.numeric == "int8" and step.w_zp != 0:
        raise ValueError(f"node {node.name!r}: int8 weights must be symmetric (zero point 0)")
    acc_scale = s_in * s_w
    step.bias = _bias(g, node, o, acc_scale, None)
    per_channel = len(set(s_w.tolist())) > 1
    reals = (acc_scale / s_out) if per_channel else acc_scale[:1] / s_out
    pairs = [quantize_multiplier(float(r)) for r in reals]
    step.rq = "fixed"
    step.mult = np.array([p[0] for p in pairs], np.int32)
    step.shift = np.array([p[1] for p in pairs], np.int32)
    return step


def _same_quant(g: Graph, a: str, b: str, node: Node) -> None:
    qa, qb = g.tensors[a].quant, g.tensors[b].quant
    if g.numeric == "float32":
        return
    same = (
        (_frac(g.tensors[a]) == _frac(g.tensors[b]))
        if g.numeric == "qmn"
        else (qa is not None and qb is not None and np.allclose(qa.scale, qb.scale, rtol=1e-6) and _zp(qa) == _zp(qb))
    )
    if not same:
        raise ValueError(f"node {node.name!r} ({node.op}): output quantization must equal the input's")


def _lower_add(g: Graph, node: Node) -> AddStep:
    a, b = node.inputs
    out = node.outputs[0]
    for t in (a, b, out):
        _check_act_dtype(g, t)
    if g.tensors[a].shape != g.tensors[b].shape:
        raise ValueError(f"node {node.name!r}: add without broadcasting needs equal shapes")
    step = AddStep(name=node.name, inp=(a, b), out=out, n=numel(g.tensors[out].shape), rq="float")
    step.act_min, step.act_max = act_range(g.numeric, g.tensors[out], node.attrs.get("act"))
    ta, tb, to = g.tensors[a], g.tensors[b], g.tensors[out]
    if g.numeric == "qmn":
        fa, fb, fo = _frac(ta), _frac(tb), _frac(to)
        f = max(fa, fb)
        step.rq = "pow2"
        step.a_shift, step.b_shift, step.out_shift = f - fa, f - fb, f - fo
    elif g.numeric in ("uint8", "int8"):
        sa, sb, so = _scale(ta.quant, a)[0], _scale(tb.quant, b)[0], _scale(to.quant, out)[0]
        twice_max = 2.0 * max(sa, sb)
        step.rq = "fixed"
        step.a_zp, step.b_zp, step.out_zp = _zp(ta.quant), _zp(tb.quant), _zp(to.quant)
        step.a_mult, step.a_shift = quantize_multiplier(sa / twice_max)
        step.b_mult, step.b_shift = quantize_multiplier(sb / twice_max)
        step.out_mult, step.out_shift = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * so))
    return step


def lower(g: Graph) -> Lowered:
    """Resolve shapes and integer parameters of every node; raise ValueError on what C cannot run."""
    g.check()
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ValueError("the code generator supports exactly one graph input and one output")
    if g.numeric not in ACT_DTYPE:
        raise ValueError(f"unknown numeric mode {g.numeric!r}")
    _check_act_dtype(g, g.inputs[0])
    steps: list[Step] = []
    output, host_softmax = g.outputs[0], False
    for i, node in enumerate(g.nodes):
        if node.op in ("conv2d", "linear"):
            steps.append(_lower_conv(g, node))
        elif node.op in ("maxpool2d", "avgpool2d"):
            x, out = node.inputs[0], node.outputs[0]
            _same_quant(g, x, out, node)
            a = node.attrs
            k = tuple(a["kernel"])
            ps = PoolStep(
                name=node.name, op=node.op, inp=x, out=out, in_shape=chw(g.tensors[x].shape),
                out_shape=chw(g.tensors[out].shape), kernel=k, stride=tuple(a.get("stride") or k),
                padding=tuple(a.get("padding", [0, 0])),
            )
            want = (ps.in_shape[0], *_spatial(ps.in_shape, ps.kernel, ps.stride, ps.padding))
            if ps.out_shape != want:
                raise ValueError(f"node {node.name!r}: output shape {ps.out_shape} != {want} computed from the attributes")
            if any(p * 2 > kk for p, kk in zip(ps.padding, ps.kernel, strict=True)):
                raise ValueError(f"node {node.name!r}: pool padding larger than half the kernel")
            steps.append(ps)
        elif node.op == "add":
            steps.append(_lower_add(g, node))
        elif node.op in ("relu", "relu6"):
            x, out = node.inputs[0], node.outputs[0]
            _same_quant(g, x, out, node)
            lo, hi = act_range(g.numeric, g.tensors[out], node.op)
            steps.append(ClampStep(node.name, x, out, numel(g.tensors[out].shape), lo, hi))
        elif node.op == "flatten":
            steps.append(AliasStep(node.name, node.inputs[0], node.outputs[0]))
        elif node.op == "softmax":
            if i != len(g.nodes) - 1 or node.outputs[0] != g.outputs[0]:
                raise ValueError("softmax is only supported as the last node producing the graph output")
            output, host_softmax = node.inputs[0], True
    return Lowered(graph=g, steps=steps, input=g.inputs[0], output=output, host_softmax=host_softmax)
