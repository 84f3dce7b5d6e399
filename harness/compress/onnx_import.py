"""ONNX -> IR importer for users who bring a trained ONNX file (and torch.onnx export of our own models).

The ONNX model is taken as trained: it can be quantized and evaluated, not retrained or pruned.
Unsupported operators are kept under their ONNX names so Graph.check lists all of them at once.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from harness.compress.errors import UnsupportedModelError
from harness.compress.export import check_graph, fold_batch_norm, fuse_activations
from harness.ir import Graph, Node, TensorInfo


def export_onnx(model: Any, input_shape: tuple[int, ...], path: Path) -> Path:
    """torch.onnx.export of a float model (TorchScript exporter: needs no onnxscript, works offline)."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval().cpu(), (torch.zeros(1, *input_shape),), str(path), dynamo=False,
            input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )  # fmt: skip
    return path


def import_onnx(path: str | Path, name: str | None = None) -> Graph:
    """Load an ONNX file into a checked float32 IR graph (BN folded, activations fused)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    path = Path(path)
    if not path.is_file():
        raise UnsupportedModelError(f"ONNX file {str(path)!r} not found")
    try:
        model = shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as exc:
        raise UnsupportedModelError(f"{path}: not a readable ONNX model ({exc})") from None
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i).astype(np.float32) for i in g.initializer}
    shapes: dict[str, list[int]] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = [int(d) for d in dims[1:]]
    b = _OnnxBuilder(Graph(name or path.stem, "float32", [], [], [], {}), consts, shapes)
    for vi in g.input:
        if vi.name not in consts:
            b.graph.inputs.append(vi.name)
            b.graph.tensors[vi.name] = TensorInfo(vi.name, shapes[vi.name], "float32")
    for n in g.node:
        b.visit(n, {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute})
    b.graph.outputs = [b.alias.get(o.name, o.name) for o in g.output]
    fold_batch_norm(b.graph)
    fuse_activations(b.graph)
    return check_graph(b.graph)


class _OnnxBuilder:
    def __init__(self, graph: Graph, consts: dict[str, np.ndarray], shapes: dict[str, list[int]]):
        self.graph, self.consts, self.shapes = graph, consts, shapes
        self.alias: dict[str, str] = {}

    def t(self, name: str) -> str:
        return self.alias.get(name, name)

    def const(self, name: str, arr: np.ndarray | None = None) -> str:
        """Register a constant under a name of its own (why: ONNX may share one initializer between
        layers, but each layer's quantized copy differs)."""
        name = self.t(name)
        arr = self.consts[name] if arr is None else arr
        base, k = name, 1
        while name in self.graph.constants:
            name, k = f"{base}_{k}", k + 1
        self.graph.constants[name] = arr.astype(np.float32)
        self.graph.tensors[name] = TensorInfo(name, list(arr.shape), "float32")
        return name

    def emit(self, n: Any, op: str, inputs: list[str], attrs: dict[str, Any] | None = None) -> None:
        out = n.output[0]
        self.graph.nodes.append(Node(n.name or out, op, inputs, [out], attrs or {}))
        self.graph.tensors[out] = TensorInfo(out, self.shapes.get(out, []), "float32")

    def visit(self, n: Any, a: dict[str, Any]) -> None:
        op, ins = n.op_type, [i for i in n.input if i]
        x = self.t(ins[0]) if ins else ""
        if op == "Conv" and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET"):
            pads = list(a.get("pads", [0, 0, 0, 0]))
            if pads[:2] != pads[2:]:
                self.emit(n, "Conv(asymmetric pads)", [x])
                return
            attrs: dict[str, Any] = {"stride": list(a.get("strides", [1, 1])), "padding": pads[:2],
                                     "dilation": list(a.get("dilations", [1, 1])), "act": None,
                                     "groups": int(a.get("group", 1))}  # fmt: skip
            self.emit(n, "conv2d", [x, *[self.const(i) for i in ins[1:]]], attrs)
        elif op == "Gemm" and a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0 and not a.get("transA", 0):
            w = self.consts[ins[1]] if a.get("transB", 0) else self.consts[ins[1]].T
            inputs = [x, self.const(ins[1], w)] + ([self.const(ins[2])] if len(ins) > 2 else [])
            self.emit(n, "linear", inputs, {"act": None})
        elif op == "MatMul" and len(ins) == 2 and ins[1] in self.consts and self.consts[ins[1]].ndim == 2:
            self.emit(n, "linear", [x, self.const(ins[1], self.consts[ins[1]].T)], {"act": None})
        elif op == "Add" and self._bias_add(n, ins):
            pass
        elif op == "BatchNormalization":
            gamma, beta, mean, var = (self.consts[i] for i in ins[1:5])
            scale = gamma / np.sqrt(var + a.get("epsilon", 1e-5))
            self.emit(n, "batch_norm", [x, self.const(ins[1] + ".scale", scale), self.const(ins[2] + ".shift", beta - mean * scale)])
        elif op == "Relu":
            self.emit(n, "relu", [x])
        elif op == "Clip" and self._clip_range(ins) == (0.0, 6.0):
            self.emit(n, "relu6", [x])
        elif op in ("MaxPool", "AveragePool") and not a.get("ceil_mode", 0) and self._pads_ok(a):
            k = list(a["kernel_shape"])
            attrs = {"kernel": k, "stride": list(a.get("strides", k)), "padding": list(a.get("pads", [0, 0, 0, 0]))[:2]}
            if op == "AveragePool" and a.get("count_include_pad", 0) and any(attrs["padding"]):
                self.emit(n, "AveragePool(count_include_pad)", [x])
            else:
                self.emit(n, "maxpool2d" if op == "MaxPool" else "avgpool2d", [x], attrs)
        elif op == "GlobalAveragePool":
            k = self.shapes[ins[0]][-2:]
            self.emit(n, "avgpool2d", [x], {"kernel": k, "stride": k, "padding": [0, 0]})
        elif (op == "Flatten" and a.get("axis", 1) == 1) or (op == "Reshape" and len(self.shapes.get(n.output[0], [])) == 1):
            self.emit(n, "flatten", [x])
        elif op == "Add" and all(i not in self.consts for i in ins):
            self.emit(n, "add", [self.t(i) for i in ins], {"act": None})
        elif op == "Softmax":
            self.emit(n, "softmax", [x])
        elif op in ("Identity", "Dropout"):
            self.alias[n.output[0]] = x
            if x in self.consts:
                self.consts[n.output[0]] = self.consts[x]
        else:
            self.emit(n, op, [self.t(i) for i in ins if i not in self.consts])

    def _bias_add(self, n: Any, ins: list[str]) -> bool:
        """MatMul + Add(bias) as exported for bias-free-then-bias linears: fold the bias in."""
        const = [i for i in ins if i in self.consts]
        other = [i for i in ins if i not in self.consts]
        if len(const) != 1 or len(other) != 1 or self.consts[const[0]].ndim != 1:
            return False
        prod = self.graph.producers().get(self.t(other[0]))
        if prod is None or prod.op != "linear" or len(prod.inputs) != 2:
            return False
        prod.inputs.append(self.const(const[0]))
        self.alias[n.output[0]] = self.t(other[0])
        return True

    def _clip_range(self, ins: list[str]) -> tuple[float, float]:
        lo = float(self.consts[ins[1]]) if len(ins) > 1 and ins[1] in self.consts else -np.inf
        hi = float(self.consts[ins[2]]) if len(ins) > 2 and ins[2] in self.consts else np.inf
        return lo, hi

    @staticmethod
    def _pads_ok(a: dict[str, Any]) -> bool:
        p = list(a.get("pads", [0, 0, 0, 0]))
        return p[:2] == p[2:] and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
