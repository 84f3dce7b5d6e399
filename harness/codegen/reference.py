"""Numpy reference executor: the ground truth the generated C must reproduce bit-exactly.

Quantized arithmetic (all intermediate values exact integers; C does the same in int32/int64):

Tensors and what the code generator expects in each ``QuantParams``:
  uint8  activations uint8 affine per tensor (scale[0], zero_point[0]); weights stored uint8,
         affine per tensor; bias int32 with scale s_in*s_w, zero point 0.
  int8   activations int8 affine per tensor; weights stored int8, symmetric, scale per output
         channel (axis 0, len O, or one entry), zero_point 0; bias int32 with scale s_in*s_w[c].
  qmn    every activation/weight int8 with ``frac_bits`` (real = q * 2**-frac); bias any int dtype
         with its own frac_bits (usually int32 with in_frac + w_frac). A float32 bias constant is
         accepted in every mode and quantized here: round(b / (s_in*s_w[c])) or
         floor(b * 2**(in_frac+w_frac) + 0.5). An integer bias whose scale differs from s_in*s_w
         is rescaled with round(); a qmn bias is aligned by ``bias << (in+w-b_frac)`` (or an
         NN_ROUND right shift when negative).

Input quantization (host side, :func:`quantize_tensor`): affine q = clamp(rint(x/s) + z) (rint =
round half to even); qmn q = clamp(rint(x * 2**frac)). Dequantization s*(q - z) / q * 2**-frac.

conv2d / linear (CHW, im2col column of K = Cin/groups*kh*kw, padding contributes 0):
  acc[o] = bias[o] + sum_k (q_w[o,k] - z_w) * (q_x[k] - z_x)            (int32, z_x = 0 for qmn)
  affine: out = clamp(MBQM(acc, M0[c], shift[c]) + z_out, act_min, act_max) where
          (M0, shift) = quantize_multiplier(s_in * s_w[c] / s_out) (TFLM QuantizeMultiplier:
          frexp, M0 = round-half-away(q * 2**31)), one pair per tensor unless s_w is per channel;
          MBQM(x, M0, sh) = RDBPOT(SRDHM(sat32(x << max(sh, 0)), M0), max(-sh, 0)) with gemmlowp's
          SaturatingRoundingDoublingHighMul, SRDHM(a, b) = floor((a*b + 2**30) / 2**31) (i.e. ties
          up; INT32_MIN*INT32_MIN saturates), and RoundingDivideByPOT (nearest, ties away from 0).
  qmn:    r = in_frac + w_frac - out_frac; out = clamp((acc + (1 << (r-1))) >> r) for r > 0
          (CMSIS NN_ROUND + __SSAT, >> is floor), acc for r = 0, acc << -r (in int64) for r < 0.
  act_min/act_max: dtype range intersected with the fused activation, in the stored domain:
          relu -> lo = z_out (0 for qmn); relu6 -> hi = z_out + round(6 / s_out) (6 * 2**frac).
maxpool2d: max over the window of the raw stored values; padded positions are ignored.
avgpool2d: count_include_pad = False; sum of raw values over the n valid positions, divided with
          rounding to nearest, ties away from zero: sign(sum) * ((|sum| + n/2) // n) (TFLM).
          Pools need output quantization == input quantization and padding <= kernel/2 (else
          ValueError). Every conv/pool output shape must equal PyTorch's floor-mode formula.
add:      affine (TFLM): l = 20, S = 2*max(s_a, s_b); (Ma, sha) = QM(s_a/S), (Mb, shb) = QM(s_b/S),
          (Mo, sho) = QM(S / (2**l * s_out));
          out = clamp(MBQM(MBQM((a-z_a) << l, Ma, sha) + MBQM((b-z_b) << l, Mb, shb), Mo, sho) + z_out)
          qmn: f = max(fa, fb); out = clamp(NN_ROUND shift of (a << (f-fa)) + (b << (f-fb)) by f - f_out).
relu/relu6 (unfused): clamp to the act range above; output quantization == input quantization.
flatten:  no-op (CHW memory already is torch.flatten order).
softmax:  only as the last node. The device skips it and returns the raw logits (its input); the
          host applies a float64 softmax to the dequantized logits (``run``/``decode_output``).
float32:  plain float arithmetic (float64 here, rounded to float32 per layer; C accumulates in
          float32, agreement is within 1e-5 relative).
"""

from __future__ import annotations

import numpy as np

from harness.codegen.fixedpoint import DTYPE_RANGE, mbqm, pow2_shift, round_div
from harness.codegen.lower import (
    ACT_DTYPE,
    ADD_LEFT_SHIFT,
    AddStep,
    AliasStep,
    ClampStep,
    ConvStep,
    Lowered,
    PoolStep,
    Step,
    lower,
)
from harness.ir import Graph, TensorInfo


def quantize_tensor(numeric: str, t: TensorInfo, x: np.ndarray) -> np.ndarray:
    """Float -> stored values of tensor ``t`` (see module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    if numeric == "float32":
        return x.astype(np.float32)
    lo, hi = DTYPE_RANGE[ACT_DTYPE[numeric]]
    q = t.quant
    if q is None:
        raise ValueError(f"tensor {t.name!r} has no QuantParams")
    if numeric == "qmn":
        assert q.frac_bits is not None
        v = np.rint(x * 2.0**q.frac_bits)
    else:
        v = np.rint(x / q.scale[0]) + (q.zero_point[0] if q.zero_point else 0)
    return np.clip(v, lo, hi).astype(ACT_DTYPE[numeric])


def dequantize_tensor(numeric: str, t: TensorInfo, q: np.ndarray) -> np.ndarray:
    if numeric == "float32":
        return np.asarray(q, dtype=np.float32)
    qp = t.quant
    assert qp is not None
    if numeric == "qmn":
        assert qp.frac_bits is not None
        return q.astype(np.float64) * 2.0 ** (-qp.frac_bits)
    zp = qp.zero_point[0] if qp.zero_point else 0
    return (q.astype(np.float64) - zp) * qp.scale[0]


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _columns(x: np.ndarray, s: ConvStep) -> np.ndarray:
    """im2col laid out for one GEMM per group over the whole batch: (N, C, H, W) ->
    (groups, K, N*OH*OW), built in place from a channel-major view (no transposed copy)."""
    n, c, _, _ = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = s.kernel, s.stride, s.padding, s.dilation
    oh, ow = s.out_shape[1], s.out_shape[2]
    xp: np.ndarray = np.pad(x.transpose(1, 0, 2, 3), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols: np.ndarray = np.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            cols[:, ky, kx] = xp[:, :, y0 : y0 + sh * (oh - 1) + 1 : sh, x0 : x0 + sw * (ow - 1) + 1 : sw]
    return cols.reshape(s.groups, (c // s.groups) * kh * kw, n * oh * ow)


def _grouped_matmul(w: np.ndarray, x: np.ndarray, s: ConvStep) -> np.ndarray:
    """(g, o/g, K) weights times the columns of ``x`` (same dtype): (N, O, OH*OW), one matrix
    product per group over the whole batch."""
    out = np.matmul(w, _columns(x, s))
    return out.reshape(s.out_shape[0], x.shape[0], -1).transpose(1, 0, 2)


def _int_conv_sum(s: ConvStep, x: np.ndarray) -> np.ndarray:
    """sum_k (w - z_w)(x - z_x) per output (N, O, OH*OW), exact. Through float BLAS when no
    partial sum can reach the float's integer range (every product and sum is then an exact
    float): float32 below 2**24 (typical 8-bit layers: twice float64's speed), float64 below
    2**53 (8- and 16-bit operands always), both several times faster than numpy's int64 loops.
    Else in int64."""
    w = (s.weight.astype(np.int64) - s.w_zp).reshape(s.groups, s.out_shape[0] // s.groups, s.k)
    info = np.iinfo(x.dtype)
    x_bound = max(abs(int(info.min) - int(s.in_zp)), abs(int(info.max) - int(s.in_zp)))
    bound = float(np.abs(w).max(initial=0)) * x_bound * s.k
    for ftype, limit in ((np.dtype(np.float32), 2.0**24), (np.dtype(np.float64), 2.0**53)):
        if bound < limit:
            xf: np.ndarray = x.astype(ftype)
            xf -= s.in_zp
            return _grouped_matmul(w.astype(ftype), xf, s).astype(np.int64)
    return _grouped_matmul(w, x.astype(np.int64) - s.in_zp, s)


def _conv(s: ConvStep, x: np.ndarray, numeric: str) -> np.ndarray:
    n = x.shape[0]
    x = x.reshape((n, *s.in_shape))
    og = s.out_shape[0] // s.groups
    w: np.ndarray  # float64 weights for float32, int64 (zero point removed) for the integer modes
    if numeric == "float32":
        w = s.weight.astype(np.float64).reshape(s.groups, og, s.k)
        acc = _grouped_matmul(w, x.astype(np.float64), s) + s.bias.astype(np.float64)[None, :, None]
        out = np.clip(acc, s.act_min, s.act_max).astype(np.float32)
    else:
        acc = _int_conv_sum(s, x) + s.bias.astype(np.int64)[None, :, None]
        if s.rq == "pow2":
            v = pow2_shift(acc, int(s.shift[0]))
        else:
            m = s.mult.astype(np.int64).reshape(1, -1, 1)
            sh = s.shift.astype(np.int64).reshape(1, -1, 1)
            v = mbqm(acc, m, sh) + s.out_zp
        out = np.clip(v, int(s.act_min), int(s.act_max)).astype(x.dtype)
    return out.reshape((n, *s.out_shape))


def _pool(s: PoolStep, x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    x = x.reshape((n, *s.in_shape))
    c, oh, ow = s.out_shape
    (kh, kw), (sh, sw), (ph, pw) = s.kernel, s.stride, s.padding
    is_float = np.issubdtype(x.dtype, np.floating)
    out = np.empty((n, c, oh, ow), dtype=np.float64 if is_float else np.int64)
    for oy in range(oh):
        y0, y1 = max(oy * sh - ph, 0), min(oy * sh - ph + kh, s.in_shape[1])
        for ox in range(ow):
            x0, x1 = max(ox * sw - pw, 0), min(ox * sw - pw + kw, s.in_shape[2])
            win = x[:, :, y0:y1, x0:x1]
            if s.op == "maxpool2d":
                out[:, :, oy, ox] = win.max(axis=(2, 3))
            elif is_float:
                out[:, :, oy, ox] = win.astype(np.float64).mean(axis=(2, 3))
            else:
                out[:, :, oy, ox] = round_div(win.astype(np.int64).sum(axis=(2, 3)), win.shape[2] * win.shape[3])
    return out.astype(x.dtype)


def _add(s: AddStep, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if s.rq == "float":
        v = np.clip(a.astype(np.float64) + b.astype(np.float64), s.act_min, s.act_max)
        return v.astype(np.float32)
    ai, bi = a.astype(np.int64), b.astype(np.int64)
    if s.rq == "pow2":
        v = pow2_shift((ai << s.a_shift) + (bi << s.b_shift), s.out_shift)
    else:
        sa = mbqm((ai - s.a_zp) << ADD_LEFT_SHIFT, s.a_mult, s.a_shift)
        sb = mbqm((bi - s.b_zp) << ADD_LEFT_SHIFT, s.b_mult, s.b_shift)
        v = mbqm(sa + sb, s.out_mult, s.out_shift) + s.out_zp
    return np.clip(v, int(s.act_min), int(s.act_max)).astype(a.dtype)


def execute(lw: Lowered, xq: np.ndarray, env: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Run lowered steps on stored-dtype inputs (N, *input_shape); returns the device output.

    Pass ``env`` to receive every intermediate tensor (used for calibration).
    """
    g = lw.graph
    env = {} if env is None else env
    env[lw.input] = xq
    step: Step
    for step in lw.steps:
        if isinstance(step, ConvStep):
            env[step.out] = _conv(step, env[step.inp], g.numeric)
        elif isinstance(step, PoolStep):
            env[step.out] = _pool(step, env[step.inp])
        elif isinstance(step, AddStep):
            env[step.out] = _add(step, env[step.inp[0]], env[step.inp[1]])
        elif isinstance(step, ClampStep):
            x = env[step.inp]
            lo, hi = (step.act_min, step.act_max) if g.numeric == "float32" else (int(step.act_min), int(step.act_max))
            env[step.out] = np.clip(x, lo, hi).astype(x.dtype)
        elif isinstance(step, AliasStep):
            x = env[step.inp]
            env[step.out] = x.reshape(x.shape[0], -1)
    out = env[lw.output]
    return out.reshape((out.shape[0], *g.tensors[lw.output].shape))


def run_raw(graph: Graph, x_q: np.ndarray) -> np.ndarray:
    """Stored-dtype input (N, *in_shape) -> stored values of the device output (N, *out_shape)."""
    lw = lower(graph)
    xq = np.asarray(x_q).astype(ACT_DTYPE[graph.numeric])
    return execute(lw, xq.reshape((xq.shape[0], *graph.tensors[lw.input].shape)))


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float input (N, *in_shape) -> float output: quantize, exact integer run, dequantize (+softmax)."""
    lw = lower(graph)
    xq = quantize_tensor(graph.numeric, graph.tensors[lw.input], np.asarray(x))
    raw = execute(lw, xq.reshape((xq.shape[0], *graph.tensors[lw.input].shape)))
    y = dequantize_tensor(graph.numeric, graph.tensors[lw.output], raw)
    if lw.host_softmax:
        y = softmax(y.reshape(y.shape[0], -1).astype(np.float64)).reshape(y.shape)
    return np.asarray(y, dtype=np.float32)
