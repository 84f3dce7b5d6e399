"""torch -> IR exporter (torch.fx symbolic trace + shape propagation), with batch-norm folding and
ReLU/ReLU6 fusion into the preceding conv/linear/add (``attrs["act"]``).

Unsupported operators are kept as nodes named after the torch op, so ``Graph.check`` lists every
one of them in a single clear error instead of failing on the first.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from harness.compress.errors import UnsupportedModelError
from harness.ir import Graph, Node, TensorInfo

ACT_OPS = ("conv2d", "linear", "add")


def check_graph(graph: Graph) -> Graph:
    """Graph.check, turned into a user-facing error."""
    try:
        graph.check()
    except ValueError as exc:
        raise UnsupportedModelError(str(exc)) from None
    return graph


def export_graph(model: nn.Module, input_shape: tuple[int, ...], name: str = "model") -> Graph:
    """Export an eval-mode float model (per-sample ``input_shape`` C,H,W) to a checked float32 IR graph."""
    model = model.eval().cpu()
    try:
        gm = fx.symbolic_trace(model)
        ShapeProp(gm).propagate(torch.zeros(1, *input_shape))
    except Exception as exc:  # tracing user code can fail in many ways
        raise UnsupportedModelError(f"cannot trace model {name!r} with torch.fx: {exc}") from None
    b = _Builder(name, dict(gm.named_modules()))
    for n in gm.graph.nodes:
        b.visit(n)
    graph = b.graph
    fold_batch_norm(graph)
    fuse_activations(graph)
    return check_graph(graph)


def _shape(n: fx.node.Argument) -> list[int]:
    """Per-sample shape recorded by ShapeProp; [] for a non-tensor argument or no record."""
    if not isinstance(n, fx.Node):
        return []
    meta = n.meta.get("tensor_meta")
    return list(meta.shape[1:]) if meta is not None and hasattr(meta, "shape") else []


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(i) for i in v]


class _Builder:
    """Turns fx nodes into IR nodes; aliases carry identity ops (dropout, identity) through."""

    def __init__(self, name: str, modules: dict[str, nn.Module]):
        self.modules = modules
        self.graph = Graph(name=name, numeric="float32", inputs=[], outputs=[], nodes=[], tensors={})
        self.alias: dict[str, str] = {}

    def t(self, a: Any) -> str:
        return self.alias.get(a.name, a.name) if isinstance(a, fx.Node) else f"<const {a!r}>"

    def const(self, name: str, value: torch.Tensor) -> str:
        arr = value.detach().cpu().numpy().astype(np.float32)
        self.graph.constants[name] = arr
        self.graph.tensors[name] = TensorInfo(name, list(arr.shape), "float32")
        return name

    def emit(self, n: fx.Node, op: str, inputs: list[str], attrs: dict[str, Any] | None = None) -> None:
        self.graph.nodes.append(Node(n.name, op, inputs, [n.name], attrs or {}))
        self.graph.tensors[n.name] = TensorInfo(n.name, _shape(n), "float32")

    def visit(self, n: fx.Node) -> None:
        if n.op == "placeholder":
            self.graph.inputs.append(n.name)
            self.graph.tensors[n.name] = TensorInfo(n.name, _shape(n), "float32")
        elif n.op == "output":
            outs = n.args[0] if isinstance(n.args[0], (tuple, list)) else [n.args[0]]
            self.graph.outputs = [self.t(o) for o in outs]
        elif n.op == "call_module":
            self.module(n, self.modules[str(n.target)])
        elif n.op in ("call_function", "call_method"):
            self.function(n)
        elif n.op == "get_attr":
            self.emit(n, "get_attr", [])

    def module(self, n: fx.Node, m: nn.Module) -> None:
        x = self.t(n.args[0])
        p = str(n.target)
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str):
            ins = [x, self.const(f"{p}.weight", m.weight)]
            if m.bias is not None:
                ins.append(self.const(f"{p}.bias", m.bias))
            attrs = {"stride": _pair(m.stride), "padding": _pair(m.padding), "dilation": _pair(m.dilation),
                     "groups": m.groups, "act": None}  # fmt: skip
            self.emit(n, "conv2d", ins, attrs)
        elif isinstance(m, nn.Linear):
            ins = [x, self.const(f"{p}.weight", m.weight)]
            if m.bias is not None:
                ins.append(self.const(f"{p}.bias", m.bias))
            self.emit(n, "linear", ins, {"act": None})
        elif (isinstance(m, nn.BatchNorm2d) and m.track_running_stats
              and m.running_mean is not None and m.running_var is not None):
            scale = (m.weight if m.affine else torch.ones_like(m.running_var)) / torch.sqrt(m.running_var + m.eps)
            shift = (m.bias if m.affine else torch.zeros_like(m.running_mean)) - m.running_mean * scale
            self.emit(n, "batch_norm", [x, self.const(f"{p}.scale", scale), self.const(f"{p}.shift", shift)])
        elif isinstance(m, nn.ReLU):
            self.emit(n, "relu", [x])
        elif isinstance(m, nn.ReLU6) or (isinstance(m, nn.Hardtanh) and (m.min_val, m.max_val) == (0.0, 6.0)):
            self.emit(n, "relu6", [x])
        elif isinstance(m, nn.MaxPool2d) and not m.ceil_mode and _pair(m.dilation) == [1, 1]:
            self.pool(n, "maxpool2d", x, m.kernel_size, m.stride, m.padding)
        elif isinstance(m, nn.AvgPool2d) and not m.ceil_mode and (not m.count_include_pad or _pair(m.padding) == [0, 0]):
            self.pool(n, "avgpool2d", x, m.kernel_size, m.stride, m.padding)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive_avg(n, x)
        elif isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
            self.emit(n, "flatten", [x])
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            self.alias[n.name] = x
        elif isinstance(m, nn.Softmax) and m.dim in (1, -1):
            self.emit(n, "softmax", [x])
        else:
            self.emit(n, type(m).__name__, [x])

    def pool(self, n: fx.Node, op: str, x: str, k: Any, s: Any, p: Any) -> None:
        self.emit(n, op, [x], {"kernel": _pair(k), "stride": _pair(s if s else k), "padding": _pair(p)})

    def adaptive_avg(self, n: fx.Node, x: str) -> None:
        src = n.args[0]
        h, w = _shape(src)[-2:]
        oh, ow = _shape(n)[-2:]
        if h % oh or w % ow:
            self.emit(n, "adaptive_avg_pool2d(non-divisible)", [x])
            return
        k = [h // oh, w // ow]
        self.emit(n, "avgpool2d", [x], {"kernel": k, "stride": k, "padding": [0, 0]})

    def function(self, n: fx.Node) -> None:
        f = n.target
        args = [a for a in n.args if isinstance(a, fx.Node)]
        x = self.t(n.args[0]) if n.args else ""
        if f in (torch.relu, F.relu, "relu") or (f == "clamp" and n.kwargs == {"min": 0}):
            self.emit(n, "relu", [x])
        elif f in (F.relu6,):
            self.emit(n, "relu6", [x])
        elif f in (operator.add, torch.add, operator.iadd, "add") and len(args) == 2 and not n.kwargs:
            self.emit(n, "add", [self.t(args[0]), self.t(args[1])], {"act": None})
        elif f in (torch.flatten, "flatten", "view", "reshape") and self._is_flatten(n):
            self.emit(n, "flatten", [x])
        elif f in (F.dropout, "contiguous"):
            self.alias[n.name] = x
        elif f == "size":
            pass  # only feeds view/reshape arguments, checked through the output shape
        elif f in (F.max_pool2d, F.avg_pool2d) and self._functional_pool(n, x):
            pass
        elif f is F.adaptive_avg_pool2d:
            self.adaptive_avg(n, x)
        elif f in (torch.softmax, F.softmax, "softmax"):
            self.emit(n, "softmax", [x])
        else:
            fname = f if isinstance(f, str) else getattr(f, "__name__", str(f))
            self.emit(n, str(fname), [self.t(a) for a in args])

    def _functional_pool(self, n: fx.Node, x: str) -> bool:
        """F.max_pool2d / F.avg_pool2d with plain arguments (no ceil mode, dilation, padded average)."""
        names = ["input", "kernel_size", "stride", "padding"]
        names += ["dilation", "ceil_mode"] if n.target is F.max_pool2d else ["ceil_mode", "count_include_pad"]
        a = {**dict(zip(names, n.args, strict=False)), **n.kwargs}
        pad = a.get("padding", 0)
        if a.get("ceil_mode", False) or _pair(a.get("dilation", 1)) != [1, 1]:
            return False
        if n.target is F.avg_pool2d and a.get("count_include_pad", True) and _pair(pad) != [0, 0]:
            return False
        op = "maxpool2d" if n.target is F.max_pool2d else "avgpool2d"
        self.pool(n, op, x, a["kernel_size"], a.get("stride"), pad)
        return True

    def _is_flatten(self, n: fx.Node) -> bool:
        src, out = _shape(n.args[0]), _shape(n)
        return len(out) == 1 and int(np.prod(src)) == out[0]


def _consumers(graph: Graph, tensor: str) -> list[Node]:
    return [n for n in graph.nodes if tensor in n.inputs]


def _absorb(graph: Graph, producer: Node, node: Node) -> None:
    """``producer`` takes over ``node``'s output name; ``node`` and the intermediate tensor vanish."""
    mid = producer.outputs[0]
    producer.outputs = list(node.outputs)
    graph.nodes.remove(node)
    del graph.tensors[mid]


def fold_batch_norm(graph: Graph) -> None:
    """Fold each batch_norm into the conv/linear that alone feeds it (why: the MCU never runs BN)."""
    prod = graph.producers()
    for bn in [n for n in graph.nodes if n.op == "batch_norm"]:
        src = prod.get(bn.inputs[0])
        if src is None or src.op not in ("conv2d", "linear") or len(_consumers(graph, bn.inputs[0])) != 1:
            continue
        if src.inputs[0] == bn.inputs[0] or bn.inputs[0] in graph.outputs:
            continue
        scale = graph.constants.pop(bn.inputs[1])
        shift = graph.constants.pop(bn.inputs[2])
        for k in bn.inputs[1:]:
            del graph.tensors[k]
        wname = src.inputs[1]
        w = graph.constants[wname]
        graph.constants[wname] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
        if len(src.inputs) > 2:
            bias = graph.constants[src.inputs[2]] * scale + shift
        else:
            bname = wname.rsplit(".", 1)[0] + ".bias" if wname.endswith(".weight") else wname + "_bias"
            src.inputs.append(bname)
            bias = shift
            graph.tensors[bname] = TensorInfo(bname, [len(shift)], "float32")
        graph.constants[src.inputs[2]] = bias.astype(np.float32)
        _absorb(graph, src, bn)
        prod = graph.producers()


def fuse_activations(graph: Graph) -> None:
    """Fuse a relu/relu6 into its conv/linear/add producer when nothing else reads the pre-activation."""
    prod = graph.producers()
    for act in [n for n in graph.nodes if n.op in ("relu", "relu6")]:
        src = prod.get(act.inputs[0])
        if src is None or src.op not in ACT_OPS or src.attrs.get("act") is not None:
            continue
        if len(_consumers(graph, act.inputs[0])) != 1 or act.inputs[0] in graph.outputs:
            continue
        src.attrs["act"] = act.op
        _absorb(graph, src, act)
        prod = graph.producers()


def count_params(graph: Graph) -> tuple[int, int]:
    """(total, nonzero) elements over all constants of a float graph (weights and biases, BN folded)."""
    total = sum(int(c.size) for c in graph.constants.values())
    nonzero = sum(int(np.count_nonzero(c)) for c in graph.constants.values())
    return total, nonzero
