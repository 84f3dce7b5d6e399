"""Hand-built IR graphs (random weights) and a minimal post-training quantizer.

They exercise the generator before real artifacts exist (tests, benchmarks, the firmware's
smoke builds). The quantizer follows the QuantParams contract in reference.py; it is not the
compression engineer's quantizer, only a faithful producer of the same format.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from harness.codegen.lower import lower
from harness.codegen.reference import execute
from harness.ir import Graph, Node, QuantDtype, QuantParams, TensorInfo


class GraphBuilder:
    """Sequential float32 graph builder; every method returns the name of the tensor it made."""

    def __init__(self, name: str, input_shape: tuple[int, ...], seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.g = Graph(name=name, numeric="float32", inputs=["input"], outputs=[], nodes=[], tensors={})
        self.g.tensors["input"] = TensorInfo("input", list(input_shape), "float32")
        self.cur = "input"
        self._n = 0

    def _name(self, op: str) -> str:
        self._n += 1
        return f"{op}{self._n}"

    def _tensor(self, name: str, shape: list[int]) -> str:
        self.g.tensors[name] = TensorInfo(name, shape, "float32")
        return name

    def _const(self, name: str, arr: np.ndarray, sparsity: float = 0.0) -> str:
        self.g.constants[name] = arr.astype(np.float32)
        self.g.tensors[name] = TensorInfo(name, list(arr.shape), "float32", sparsity=sparsity)
        return name

    def _weight(self, shape: tuple[int, ...], fan_in: int, sparsity: float) -> np.ndarray:
        w = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
        if sparsity > 0:
            cut = np.quantile(np.abs(w), sparsity)
            w[np.abs(w) <= cut] = 0.0
        return w

    def _node(self, op: str, inputs: list[str], out_shape: list[int], **attrs: object) -> str:
        name = self._name(op)
        out = self._tensor(f"{name}_out", out_shape)
        self.g.nodes.append(Node(name, op, inputs, [out], dict(attrs)))
        self.cur = out
        return out

    def shape(self, t: str | None = None) -> list[int]:
        return self.g.tensors[t or self.cur].shape

    def conv(self, out_c: int, k: int, stride: int = 1, pad: int = 0, groups: int = 1, act: str | None = "relu",
             bias: bool = True, sparsity: float = 0.0, x: str | None = None, dilation: int = 1) -> str:
        x = x or self.cur
        c, h, w = self.shape(x)
        span = dilation * (k - 1) + 1
        oh, ow = (h + 2 * pad - span) // stride + 1, (w + 2 * pad - span) // stride + 1
        name = f"w{self._n + 1}"
        wt = self._const(name, self._weight((out_c, c // groups, k, k), c // groups * k * k, sparsity), sparsity)
        ins = [x, wt]
        if bias:
            ins.append(self._const(f"b{self._n + 1}", self.rng.normal(0, 0.1, size=out_c)))
        return self._node("conv2d", ins, [out_c, oh, ow], stride=[stride, stride], padding=[pad, pad],
                          dilation=[dilation, dilation], groups=groups, act=act)

    def linear(self, out_f: int, act: str | None = None, bias: bool = True, sparsity: float = 0.0) -> str:
        (k,) = self.shape()
        wt = self._const(f"w{self._n + 1}", self._weight((out_f, k), k, sparsity), sparsity)
        ins = [self.cur, wt]
        if bias:
            ins.append(self._const(f"b{self._n + 1}", self.rng.normal(0, 0.1, size=out_f)))
        return self._node("linear", ins, [out_f], act=act)

    def pool(self, op: str, k: int, stride: int | None = None, pad: int = 0) -> str:
        stride = stride or k
        c, h, w = self.shape()
        oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        return self._node(op, [self.cur], [c, oh, ow], kernel=[k, k], stride=[stride, stride], padding=[pad, pad])

    def add(self, a: str, b: str, act: str | None = "relu") -> str:
        return self._node("add", [a, b], list(self.shape(a)), act=act)

    def unary(self, op: str) -> str:
        shape = [int(np.prod(self.shape()))] if op == "flatten" else list(self.shape())
        return self._node(op, [self.cur], shape)

    def build(self) -> Graph:
        self.g.outputs = [self.cur]
        self.g.check()
        return self.g


def lenet(seed: int = 0, sparsity: float = 0.0, channels: tuple[int, int] = (8, 16), softmax: bool = False) -> Graph:
    """LeNet-Light (seed project): conv5x5 -> maxpool2 -> conv5x5 -> maxpool3 -> linear."""
    b = GraphBuilder("lenet_light", (1, 28, 28), seed)
    b.conv(channels[0], 5, pad=2)
    b.pool("maxpool2d", 2)
    b.conv(channels[1], 5, pad=2, sparsity=sparsity)
    b.pool("maxpool2d", 3)
    b.unary("flatten")
    b.linear(10, sparsity=sparsity)
    if softmax:
        b.unary("softmax")
    return b.build()


def alexnet(seed: int = 0, sparsity: float = 0.0) -> Graph:
    """AlexNet-Light: stride-2 conv, pools, four convs, avgpool, linear (bias-free convs + linear)."""
    b = GraphBuilder("alexnet_light", (3, 32, 32), seed)
    b.conv(16, 3, stride=2, pad=1, bias=False)
    b.pool("maxpool2d", 2)
    b.conv(32, 3, pad=1, bias=False, sparsity=sparsity)
    b.pool("maxpool2d", 2)
    b.conv(32, 3, pad=1, bias=False, sparsity=sparsity)
    b.conv(64, 3, pad=1, bias=False, sparsity=sparsity)
    b.pool("avgpool2d", 2)
    b.unary("flatten")
    b.linear(10, bias=False, sparsity=sparsity)
    return b.build()


def residual(seed: int = 0) -> Graph:
    """Depthwise-separable residual block with an unfused relu6, padded avg/max pools and add."""
    b = GraphBuilder("resblock", (8, 12, 12), seed)
    stem = b.conv(16, 3, pad=1)
    b.conv(16, 3, pad=1, groups=16, act=None)  # depthwise
    b.unary("relu6")
    branch = b.conv(16, 1, act=None)
    b.add(stem, branch, act="relu")
    b.pool("avgpool2d", 3, stride=2, pad=1)
    b.pool("maxpool2d", 3, stride=1, pad=1)
    b.unary("relu")
    b.unary("flatten")
    b.linear(10)
    return b.build()


def _affine(lo: float, hi: float, dtype: QuantDtype) -> QuantParams:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    qmin, qmax = (0, 255) if dtype == "uint8" else (-128, 127)
    s = (hi - lo) / (qmax - qmin) or 1.0
    zp = int(np.clip(round(qmin - lo / s), qmin, qmax))
    return QuantParams("affine", dtype, [float(s)], [zp])


def _frac(maxabs: float, bits: int = 8) -> int:
    return bits - 1 - math.ceil(math.log2(maxabs)) if maxabs > 0 else bits - 1


def quantize(g: Graph, numeric: str, calib: np.ndarray) -> Graph:
    """Post-training quantization of a float32 graph to uint8 | int8 | qmn (min/max calibration)."""
    env: dict[str, np.ndarray] = {}
    execute(lower(g), calib.astype(np.float32), env)
    q = copy.deepcopy(g)
    q.numeric = numeric  # type: ignore[assignment]
    act_dtype: QuantDtype = "uint8" if numeric == "uint8" else "int8"
    producers = q.producers()
    for name in q.activation_names():
        t = q.tensors[name]
        t.dtype = act_dtype
        node = producers.get(name)
        if node is not None and node.op == "softmax":
            t.dtype = "float32"  # computed on the host
            continue
        if node is not None and node.op in ("maxpool2d", "avgpool2d", "relu", "relu6", "flatten"):
            continue  # filled from the input below (order: topological)
        v = env[name]
        if numeric == "qmn":
            t.quant = QuantParams("pow2", "int8", frac_bits=_frac(float(np.abs(v).max())))
        else:
            t.quant = _affine(float(v.min()), float(v.max()), act_dtype)
    for node in q.nodes:
        if node.op in ("maxpool2d", "avgpool2d", "relu", "relu6", "flatten"):
            q.tensors[node.outputs[0]].quant = copy.deepcopy(q.tensors[node.inputs[0]].quant)
        if node.op not in ("conv2d", "linear"):
            continue
        tin = q.tensors[node.inputs[0]]
        tq = tin.quant
        if tq is None:
            raise ValueError(f"node {node.name!r}: input {tin.name!r} was not calibrated (no QuantParams)")
        w = g.constants[node.inputs[1]].astype(np.float64)
        wt = q.tensors[node.inputs[1]]
        o = w.shape[0]
        if numeric == "uint8":
            wt.quant = _affine(float(w.min()), float(w.max()), "uint8")
            qw = np.clip(np.rint(w / wt.quant.scale[0]) + wt.quant.zero_point[0], 0, 255).astype(np.uint8)
            acc_scale = np.full(o, tq.scale[0] * wt.quant.scale[0])
        elif numeric == "int8":
            s = np.abs(w.reshape(o, -1)).max(axis=1) / 127.0
            s[s == 0] = 1.0
            wt.quant = QuantParams("symmetric", "int8", s.tolist(), [0] * o, axis=0)
            qw = np.clip(np.rint(w / s.reshape((o,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
            acc_scale = tq.scale[0] * s
        else:
            fw = _frac(float(np.abs(w).max()))
            wt.quant = QuantParams("pow2", "int8", frac_bits=fw)
            qw = np.clip(np.rint(w * 2.0**fw), -128, 127).astype(np.int8)
            if tq.frac_bits is None:
                raise ValueError(f"node {node.name!r}: qmn input {tin.name!r} has no frac_bits")
            acc_frac = tq.frac_bits + fw
        q.constants[node.inputs[1]] = qw
        wt.dtype = str(qw.dtype)
        if len(node.inputs) > 2:
            bname = node.inputs[2]
            bf = g.constants[bname].astype(np.float64)
            bt = q.tensors[bname]
            if numeric == "qmn":
                qb = np.rint(bf * 2.0**acc_frac)
                bt.quant = QuantParams("pow2", "int32", frac_bits=acc_frac)
            else:
                qb = np.rint(bf / acc_scale)
                bt.quant = QuantParams("affine", "int32", acc_scale.tolist(), [0] * o, axis=0)
            q.constants[bname] = np.clip(qb, -(2**31), 2**31 - 1).astype(np.int32)
            bt.dtype = "int32"
    return q
