"""Host side of the device I/O: bytes sent as the model input and decoding of the output bytes.

Layout is the IR's per-sample CHW order in the stored dtype, little-endian (float32 or 8-bit);
this is exactly what ``model_input()``/``model_output()`` hold on the device.
"""

from __future__ import annotations

import numpy as np

from harness.codegen.lower import ACT_DTYPE, lower, numel
from harness.codegen.reference import dequantize_tensor, quantize_tensor, softmax
from harness.ir import Graph


def _le(dtype: str) -> np.dtype:
    return np.dtype(dtype).newbyteorder("<")


def encode_input(graph: Graph, x: np.ndarray) -> bytes:
    """One float sample of shape input_shape -> MODEL_INPUT_BYTES (quantized with the input's params)."""
    t = graph.tensors[graph.inputs[0]]
    x = np.asarray(x, dtype=np.float64)
    if x.size != numel(t.shape):
        raise ValueError(f"input has {x.size} values, tensor {t.name!r} {t.shape} needs {numel(t.shape)}")
    q = quantize_tensor(graph.numeric, t, x.reshape(t.shape))
    return q.astype(_le(ACT_DTYPE[graph.numeric])).tobytes()


def raw_output(graph: Graph, raw: bytes) -> np.ndarray:
    """MODEL_OUTPUT_BYTES -> stored output values (the device output tensor's shape)."""
    lw = lower(graph)
    t = graph.tensors[lw.output]
    arr = np.frombuffer(raw, dtype=_le(ACT_DTYPE[graph.numeric]))
    if arr.size != numel(t.shape):
        raise ValueError(f"got {arr.size} output values, expected {numel(t.shape)}")
    return arr.astype(ACT_DTYPE[graph.numeric]).reshape(t.shape)


def decode_output(graph: Graph, raw: bytes) -> np.ndarray:
    """MODEL_OUTPUT_BYTES -> float output as reference.run returns it (softmax applied on the host)."""
    lw = lower(graph)
    y = dequantize_tensor(graph.numeric, graph.tensors[lw.output], raw_output(graph, raw))
    if lw.host_softmax:
        y = softmax(y.reshape(1, -1).astype(np.float64)).reshape(y.shape)
    return np.asarray(y, dtype=np.float32)
