"""Cortex-M4 DSP kernels are bit-exact with the portable kernels and the reference (QEMU M4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.codegen import generate, io, reference
from harness.codegen.emulate import build_image, have_qemu, outputs_array, run_qemu
from harness.codegen.examples import GraphBuilder, quantize
from harness.codegen.lower import ACT_DTYPE
from harness.ir import Artifact

pytestmark = pytest.mark.skipif(not have_qemu(), reason="qemu-system-arm / arm-none-eabi-gcc missing")


def awkward_graph():
    """Odd K (27, 135), odd channel counts, odd pixel counts, depthwise, strided, dilated, CSR, linear."""
    b = GraphBuilder("awkward", (3, 11, 11), seed=9)
    b.conv(15, 3, pad=1)  # K = 27, 121 pixels, 15 rows
    b.conv(15, 3, stride=2, groups=15, act="relu6")  # depthwise, 5x5 out
    b.conv(17, 3, pad=1, sparsity=0.85)  # K = 135, CSR in auto mode
    b.conv(16, 1, act=None)
    b.conv(12, 3, pad=2, dilation=2)  # dilated, 5x5 stays 5x5
    b.pool("avgpool2d", 2, stride=2, pad=1)
    b.unary("flatten")
    b.linear(11, act="relu")
    b.linear(7)
    return b.build()


@pytest.mark.parametrize("numeric,opt", [("int8", "-O2"), ("uint8", "-O2"), ("qmn", "-O2"), ("uint8", "-O0")])
def test_dsp_and_portable_bit_exact_on_m4(numeric: str, opt: str, tmp_path: Path) -> None:
    """-O2 runs the inline-assembly 2x2 kernel, -O0 its C (ACLE intrinsics) version."""
    gf = awkward_graph()
    x = np.random.default_rng(3).normal(size=(3, 3, 11, 11)).astype(np.float32)
    g = quantize(gf, numeric, x)
    xq = reference.quantize_tensor(numeric, g.tensors["input"], x)
    want = reference.run_raw(g, xq).reshape(len(x), -1)
    inputs = [io.encode_input(g, s) for s in x]
    outs, instr = {}, {}
    for dsp in (False, True):
        d = tmp_path / f"dsp{int(dsp)}"
        gen = generate(Artifact(g), d, dsp=dsp)
        assert [r["storage"] for r in gen.layers if r["op"] == "conv2d"][2] == "csr"
        res = run_qemu(build_image(gen, inputs, d / "fw.elf", core="cortex-m4", opt=opt))
        outs[dsp] = outputs_array(res, ACT_DTYPE[numeric])
        instr[dsp] = min(res.instructions)
    assert len(np.unique(want)) > 5
    assert np.array_equal(outs[False], want)
    assert np.array_equal(outs[True], want)
    assert instr[True] < instr[False]  # and the DSP path is actually taken


def test_float_hard_fpu_on_m4f_matches_reference(tmp_path: Path) -> None:
    g = awkward_graph()
    x = np.random.default_rng(4).normal(size=(2, 3, 11, 11)).astype(np.float32)
    want = reference.run_raw(g, x).reshape(len(x), -1)
    gen = generate(Artifact(g), tmp_path)
    res = run_qemu(build_image(gen, [io.encode_input(g, s) for s in x], tmp_path / "fw.elf", core="cortex-m4f"))
    got = outputs_array(res, "float32")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
