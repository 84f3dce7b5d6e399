"""The numpy reference executor: integer primitives, float semantics vs torch, quantized modes."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.codegen import examples, io, reference
from harness.codegen.fixedpoint import mbqm, pow2_shift, quantize_multiplier, rdbpot, round_div, srdhm
from harness.codegen.lower import lower

RNG = np.random.default_rng(1234)


def _round_away(fr: Fraction) -> int:
    n = abs(fr)
    r = int(n) + (1 if n - int(n) >= Fraction(1, 2) else 0)
    return r if fr >= 0 else -r


def test_srdhm_and_rdbpot_match_exact_rational_rounding() -> None:
    a = RNG.integers(-(2**31), 2**31, size=400)
    b = RNG.integers(0, 2**31, size=400)
    got = srdhm(a, b)
    a[:4] = [2**30, -(2**30), 3 * 2**30, -3 * 2**30]  # exact ties
    b[:4] = 1
    got = srdhm(a, b)
    for ai, bi, g in zip(a.tolist(), b.tolist(), got.tolist(), strict=True):
        # the nudge + truncating division is round-half-up of a*b / 2**31
        assert g == math.floor(Fraction(ai * bi, 2**31) + Fraction(1, 2))
    assert int(srdhm(np.array([-(2**31)]), -(2**31))[0]) == 2**31 - 1
    x = RNG.integers(-(2**31), 2**31, size=400)
    e = RNG.integers(0, 31, size=400)
    for xi, ei, g in zip(x.tolist(), e.tolist(), rdbpot(x, e).tolist(), strict=True):
        assert g == _round_away(Fraction(xi, 2**ei))


def test_quantize_multiplier_reconstructs_real_and_mbqm_scales() -> None:
    for real in [1e-6, 0.0003, 0.25, 0.5, 0.7413, 0.999999999, 1.0, 3.7]:
        m0, shift = quantize_multiplier(real)
        assert 2**30 <= m0 < 2**31
        assert abs(m0 * 2.0 ** (shift - 31) - real) <= real * 2**-30
        acc = RNG.integers(-(2**20), 2**20, size=200)
        got = mbqm(acc, m0, shift)
        assert np.all(np.abs(got - acc * real) <= 1.0)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(1e-12) == (0, 0)


def test_pow2_shift_is_cmsis_nn_round_and_round_div_ties_away() -> None:
    acc = np.array([5, 6, 7, -5, -6, -7, 8])
    assert pow2_shift(acc, 2).tolist() == [1, 2, 2, -1, -1, -2, 2]  # (x + 2) >> 2, floor
    assert pow2_shift(acc, -1).tolist() == (acc * 2).tolist()
    assert round_div(np.array([5, -5, 4, -4, 7]), np.array([2, 2, 3, 3, 7])).tolist() == [3, -3, 1, -1, 1]


def _torch_forward(g, x: np.ndarray) -> np.ndarray:
    """Independent float forward pass of a builder graph with torch.nn.functional."""
    env = {g.inputs[0]: torch.from_numpy(x.astype(np.float64))}
    c = {k: torch.from_numpy(v.astype(np.float64)) for k, v in g.constants.items()}
    for n in g.nodes:
        a = n.attrs
        xs = [env[i] if i in env else c[i] for i in n.inputs]
        if n.op == "conv2d":
            y = F.conv2d(xs[0], xs[1], xs[2] if len(xs) > 2 else None, a["stride"], a["padding"], a["dilation"], a["groups"])
        elif n.op == "linear":
            y = F.linear(xs[0], xs[1], xs[2] if len(xs) > 2 else None)
        elif n.op == "maxpool2d":
            y = F.max_pool2d(xs[0], a["kernel"], a["stride"], a["padding"])
        elif n.op == "avgpool2d":
            y = F.avg_pool2d(xs[0], a["kernel"], a["stride"], a["padding"], count_include_pad=False)
        elif n.op == "add":
            y = xs[0] + xs[1]
        elif n.op == "flatten":
            y = torch.flatten(xs[0], 1)
        elif n.op == "softmax":
            y = torch.softmax(xs[0], dim=-1)
        else:
            y = xs[0]
        act = a.get("act") or (n.op if n.op in ("relu", "relu6") else None)
        if act == "relu":
            y = torch.relu(y)
        elif act == "relu6":
            y = torch.clamp(y, 0, 6)
        env[n.outputs[0]] = y
    return env[g.outputs[0]].numpy()


def _dilated(seed: int):
    b = examples.GraphBuilder("dilated", (4, 9, 9), seed)
    b.conv(6, 3, pad=2, dilation=2, stride=2)
    b.conv(6, 3, groups=2, pad=1, act="relu6")
    b.pool("maxpool2d", 2, stride=1, pad=1)
    return b.build()


@pytest.mark.parametrize("make", [examples.lenet, examples.alexnet, examples.residual, _dilated])
def test_float_reference_matches_torch(make) -> None:
    g = make(seed=3)
    x = RNG.normal(size=(4, *g.tensors["input"].shape)).astype(np.float32)
    want = _torch_forward(g, x)
    got = reference.run(g, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn"])
def test_quantized_reference_tracks_float(numeric: str) -> None:
    gf = examples.residual(seed=5)
    x = RNG.normal(size=(16, *gf.tensors["input"].shape)).astype(np.float32)
    gq = examples.quantize(gf, numeric, x)
    yf, yq = reference.run(gf, x), reference.run(gq, x)
    rel = np.abs(yq - yf).max() / np.abs(yf).max()
    assert rel < 0.12, rel  # a few quantization steps, not garbage
    assert (yq.argmax(1) == yf.argmax(1)).mean() >= 0.75


def test_uint8_conv_matches_eq5_within_one_step() -> None:
    """Seed 002 Eq. 5 with exact real arithmetic vs the fixed-point requantization."""
    gf = examples.lenet(seed=2)
    x = RNG.normal(size=(4, 1, 28, 28)).astype(np.float32)
    gq = examples.quantize(gf, "uint8", x)
    lw = lower(gq)
    conv = lw.steps[0]
    xq = reference.quantize_tensor("uint8", gq.tensors["input"], x)
    env: dict[str, np.ndarray] = {}
    reference.execute(lw, xq, env)
    # the exact integer accumulator, by torch's own convolution (float64 holds every sum exactly)
    w = torch.from_numpy((conv.weight.astype(np.int64) - conv.w_zp).reshape(conv.out_shape[0], -1, *conv.kernel))
    sums = F.conv2d(torch.from_numpy(xq.astype(np.float64) - conv.in_zp), w.double(), stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
    acc = sums.numpy().astype(np.int64).reshape(len(x), conv.out_shape[0], -1) + conv.bias[None, :, None]
    s_in = gq.tensors[conv.inp].quant.scale[0]
    s_w = gq.tensors[gq.nodes[0].inputs[1]].quant.scale[0]
    s_out = gq.tensors[conv.out].quant.scale[0]
    ideal = np.clip(np.round(acc * (s_in * s_w / s_out)) + conv.out_zp, conv.act_min, conv.act_max)
    got = env[conv.out].reshape(ideal.shape).astype(np.int64)
    assert np.abs(got - ideal).max() <= 1
    assert (got == ideal).mean() > 0.99


def test_io_roundtrip_and_host_softmax() -> None:
    gf = examples.lenet(seed=4, softmax=True)
    x = RNG.normal(size=(3, 1, 28, 28)).astype(np.float32)
    gq = examples.quantize(gf, "int8", x)
    lw = lower(gq)
    assert lw.host_softmax and lw.output != gq.outputs[0]
    y = reference.run(gq, x)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
    xq = reference.quantize_tensor("int8", gq.tensors["input"], x)
    raw = reference.run_raw(gq, xq)
    for i in range(3):
        b = io.encode_input(gq, x[i])
        assert len(b) == 784 and np.array_equal(np.frombuffer(b, np.int8).reshape(1, 28, 28), xq[i])
        out_bytes = raw[i].astype("<i1").tobytes()
        assert np.array_equal(io.raw_output(gq, out_bytes), raw[i])
        np.testing.assert_allclose(io.decode_output(gq, out_bytes), y[i], rtol=1e-6)
    with pytest.raises(ValueError):
        io.encode_input(gq, x[0, :, :10])


def test_invalid_graphs_are_rejected_with_clear_errors() -> None:
    import copy

    gf = examples.lenet(seed=0)
    x = RNG.normal(size=(2, 1, 28, 28)).astype(np.float32)
    gq = examples.quantize(gf, "int8", x)
    bad = copy.deepcopy(gq)
    bad.tensors[bad.nodes[0].outputs[0]].shape = [8, 27, 27]
    with pytest.raises(ValueError, match="output shape"):
        lower(bad)
    bad = copy.deepcopy(gq)
    pool_out = bad.nodes[1].outputs[0]
    bad.tensors[pool_out].quant = copy.deepcopy(bad.tensors[pool_out].quant)
    bad.tensors[pool_out].quant.scale = [bad.tensors[pool_out].quant.scale[0] * 2]
    with pytest.raises(ValueError, match="quantization must equal"):
        lower(bad)
    bad = copy.deepcopy(gq)
    bad.nodes[0].op = "gelu"
    with pytest.raises(ValueError, match="does not support"):
        lower(bad)
    bad = copy.deepcopy(gq)
    bad.constants[bad.nodes[0].inputs[1]] = bad.constants[bad.nodes[0].inputs[1]].astype(np.float32)
    with pytest.raises(ValueError, match="must be stored as int8"):
        lower(bad)
    bad = copy.deepcopy(gq)
    bad.tensors[bad.nodes[2].inputs[1]].quant.zero_point = [3] * 16
    with pytest.raises(ValueError, match="symmetric"):
        lower(bad)


def test_qmn_pool_without_frac_bits_is_a_value_error() -> None:
    """A pass-through op whose output lost its quantization is a clear error from lower(), not an
    AttributeError on None (found by mypy)."""
    gf = examples.lenet(seed=3)
    x = RNG.normal(size=(4, 1, 28, 28)).astype(np.float32)
    gq = examples.quantize(gf, "qmn", x)
    pool = next(n for n in gq.nodes if n.op == "maxpool2d")
    gq.tensors[pool.outputs[0]].quant = None
    with pytest.raises(ValueError, match="frac_bits"):
        lower(gq)
