"""The model graph exchanged between compression and code generation (the "artifact").

Semantics follow PyTorch: activations are per-sample (C, H, W) or (N,) tensors, conv weights are
OIHW, linear weights (out, in). The batch dimension never appears. The code generator may pick
any internal layout (e.g. HWC) as long as its results match the reference executor.

Ops (``Node.op``) and their attributes:
  conv2d      inputs [x, weight, bias?]  attrs stride:[sh,sw] padding:[ph,pw] dilation:[1,1] groups:int act
  linear      inputs [x, weight, bias?]  attrs act
  maxpool2d   inputs [x]                 attrs kernel:[kh,kw] stride:[sh,sw] padding:[ph,pw]
  avgpool2d   inputs [x]                 attrs kernel stride padding (count_include_pad = False)
  add         inputs [a, b]              attrs act
  relu/relu6  inputs [x]                 (only where it could not be fused)
  flatten     inputs [x]                 (C,H,W) -> (C*H*W,) in C-major order, like torch.flatten
  softmax     inputs [x]
``act`` is one of None, "relu", "relu6": an activation fused into the op's output.
Batch norm is folded into the preceding conv before export; depthwise conv is conv2d with
groups == in_channels.

Numeric modes (``Graph.numeric``):
  float32  every tensor float32.
  uint8    activations uint8 affine per tensor (real = scale * (q - zero_point)), weights uint8
           affine per tensor, biases int32 with scale = s_in * s_w and zero point 0 (seed 002 Eq. 2-5).
  int8     activations int8 affine per tensor, weights int8 symmetric per output channel
           (axis 0, zero point 0), biases int32 per channel with scale s_in * s_w[c]
           (the CMSIS-NN / TFLM convention).
  qmn      power-of-two: every tensor int8 with ``frac_bits`` n (real = q * 2**-n), biases int32
           with frac_bits = in_frac + w_frac (so no bias shift); the output right shift is
           in_frac + w_frac - out_frac (the seeds' CMSIS-NN q7 path).
The exact integer arithmetic is defined in harness/codegen/reference.py.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.ir_meta import ArtifactMetadata
from harness.stage_record import validate_record

Numeric = Literal["float32", "uint8", "int8", "qmn"]
QuantDtype = Literal["uint8", "int8", "int16", "int32"]
SUPPORTED_OPS = ("conv2d", "linear", "maxpool2d", "avgpool2d", "add", "relu", "relu6", "flatten", "softmax")
ARTIFACT_VERSION = 1


@dataclass
class QuantParams:
    """Quantization of one tensor. ``scale``/``zero_point`` have one entry per tensor or per channel."""

    scheme: Literal["affine", "symmetric", "pow2"]
    dtype: QuantDtype
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    axis: int | None = None  # channel axis for per-channel parameters
    frac_bits: int | None = None  # pow2 only: real = q * 2**-frac_bits


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str  # float32 | uint8 | int8 | int16 | int32
    quant: QuantParams | None = None
    # element-wise pruning record for constants: fraction of exact zeros kept by a mask
    sparsity: float = 0.0


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """A model in topological order; constants live in ``constants`` (numpy arrays)."""

    name: str
    numeric: Numeric
    inputs: list[str]
    outputs: list[str]
    nodes: list[Node]
    tensors: dict[str, TensorInfo]
    constants: dict[str, np.ndarray] = field(default_factory=dict)

    def tensor(self, name: str) -> TensorInfo:
        return self.tensors[name]

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs}

    def activation_names(self) -> list[str]:
        return [t for t in self.tensors if t not in self.constants]

    def check(self) -> None:
        """Raise ValueError for unsupported ops, dangling tensors or a non-topological order."""
        unsupported = sorted({n.op for n in self.nodes if n.op not in SUPPORTED_OPS})
        if unsupported:
            raise ValueError(
                f"model {self.name!r} uses operators the code generator does not support: "
                f"{', '.join(unsupported)} (supported: {', '.join(SUPPORTED_OPS)})"
            )
        known = set(self.inputs) | set(self.constants)
        for n in self.nodes:
            for i in n.inputs:
                if i not in known:
                    raise ValueError(f"node {n.name!r}: input {i!r} is not produced before it")
            known.update(n.outputs)
        for o in self.outputs:
            if o not in known:
                raise ValueError(f"graph output {o!r} is never produced")
        for t in known:
            if t not in self.tensors:
                raise ValueError(f"tensor {t!r} has no TensorInfo")


@dataclass
class Artifact:
    """A compressed model plus everything known about how it was made."""

    graph: Graph
    metadata: ArtifactMetadata = field(default_factory=ArtifactMetadata)

    def __post_init__(self) -> None:
        if isinstance(self.metadata, dict):  # a plain dict from a caller of the Python API
            self.metadata = ArtifactMetadata.model_validate(self.metadata)

    def content_hash(self) -> str:
        """Hash of the graph and weights only (what the firmware depends on)."""
        h = hashlib.sha256()
        h.update(json.dumps(_graph_json(self.graph), sort_keys=True).encode())
        for name in sorted(self.graph.constants):
            arr = np.ascontiguousarray(self.graph.constants[name])
            h.update(name.encode())
            h.update(str(arr.dtype).encode())
            h.update(arr.tobytes())
        return h.hexdigest()[:16]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "weights.npz", **self.graph.constants)  # type: ignore[arg-type]  # numpy stub: **kwds clash with allow_pickle: bool
        doc = {
            "artifact_version": ARTIFACT_VERSION,
            "content_hash": self.content_hash(),
            "graph": _graph_json(self.graph),
            "metadata": self.metadata.to_json(),
        }
        tmp = folder / "artifact.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1, default=_json_default))
        tmp.replace(folder / "artifact.json")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Artifact:
        folder = Path(folder)
        doc = json.loads((folder / "artifact.json").read_text())
        if doc.get("artifact_version") != ARTIFACT_VERSION:
            raise ValueError(f"{folder}: artifact version {doc.get('artifact_version')} is not {ARTIFACT_VERSION}")
        g = doc["graph"]
        with np.load(folder / "weights.npz") as npz:
            constants = {k: npz[k] for k in npz.files}
        tensors = {}
        for name, t in g["tensors"].items():
            q = t.get("quant")
            tensors[name] = TensorInfo(
                name=name,
                shape=list(t["shape"]),
                dtype=t["dtype"],
                quant=QuantParams(**q) if q else None,
                sparsity=t.get("sparsity", 0.0),
            )
        graph = Graph(
            name=g["name"],
            numeric=g["numeric"],
            inputs=g["inputs"],
            outputs=g["outputs"],
            nodes=[Node(**n) for n in g["nodes"]],
            tensors=tensors,
            constants=constants,
        )
        metadata = validate_record(ArtifactMetadata, doc.get("metadata", {}), folder / "artifact.json", "metadata")
        return cls(graph=graph, metadata=metadata)


def _graph_json(g: Graph) -> dict[str, Any]:
    return {
        "name": g.name,
        "numeric": g.numeric,
        "inputs": g.inputs,
        "outputs": g.outputs,
        "nodes": [asdict(n) for n in g.nodes],
        "tensors": {k: asdict(v) for k, v in g.tensors.items()},
    }


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")
