"""CSR conv kernels that walk each weight row once for a pair of output pixels
(firmware_templates/runtime: nnrt_csr2_* in Thumb-1 assembly, csr_pixel_pair_f in C).

Real firmware on the emulated Cortex-M0+ (sim-pico, the core the assembly was written for) against
the host reference: integer modes bit-exact, float to rounding; odd pixel counts leave one pixel to
the one-pixel loop, padding and strides move the pair across rows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from m0plus_runs import device_and_host_outputs

from harness.codegen.examples import GraphBuilder, quantize
from harness.ir import Graph

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None and os.environ.get("CI") != "true",
    reason="needs arm-none-eabi-gcc (required in CI)",
)


def sparse_graph() -> Graph:
    b = GraphBuilder("csrpairs", (3, 9, 11), seed=5)
    b.conv(12, 3, pad=1, sparsity=0.8)  # 9x11 = 99 pixels (odd): 49 pairs + 1
    b.conv(10, 3, stride=2, sparsity=0.7)  # 4x5 out, pairs straddle rows
    b.conv(9, 1, act=None, sparsity=0.6)  # pointwise, 20 pixels
    b.unary("flatten")
    b.linear(7, sparsity=0.5)  # one pixel: the one-pixel loop
    return b.build()


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn", "float32"])
def test_pixel_pair_csr_kernels_match_the_host_on_the_m0plus(numeric: str, tmp_path: Path) -> None:
    gf = sparse_graph()
    shape = gf.tensors["input"].shape
    x = np.random.default_rng(11).normal(size=(3, *shape)).astype(np.float32)
    g = gf if numeric == "float32" else quantize(gf, numeric, x)
    got, want = device_and_host_outputs(g, x, "csr", tmp_path)
    if numeric == "float32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    else:
        assert len(np.unique(want)) > 3
        assert np.array_equal(got, want)
