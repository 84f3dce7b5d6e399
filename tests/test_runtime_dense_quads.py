"""Dense quantized conv kernels without the DSP layout: four output pixels per walk of a weight
row (firmware_templates/runtime/nnrt_conv_q.c: nnrt_dense4_* in Thumb-1 assembly, dense_quads,
quad_rows) and four filters per walk of a linear layer's input (nnrt_dense1x4_*).

Real firmware on the emulated Cortex-M0+ (sim-pico, the core the assembly was written for)
against the host reference, bit-exact. The graph makes every branch run: quads inside one output
row (the shared-row column build) and quads that straddle rows, touch padding or stride by 2 (the
per-pixel build), pixel counts that leave 1-3 pixels to the one-pixel loop, K not a multiple of 4
(the kernel's tail), more than one filter block (og x K > NNRT_DENSE_BLOCK_BYTES), grouped
convolution, and linear layers whose filter count leaves 1-3 rows to the one-row loop."""

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


def dense_graph() -> Graph:
    b = GraphBuilder("densequads", (3, 10, 13), seed=7)
    b.conv(12, 3, pad=1)  # K = 27 (tail of 3); 10x13 = 130 pixels: quads cross rows and padding, 2 left over
    b.conv(40, 3)  # K = 108, 40 x 108 = 4,320 B: one block; 8x11 = 88 pixels, quads cross rows
    b.conv(128, 3, groups=2)  # per group K = 180, 64 x 180 = 11,520 B: two filter blocks; 6x9 = 54
    b.conv(9, 3, stride=2, act=None)  # stride 2: the per-pixel column build; 2x4 = 8 pixels
    b.unary("flatten")
    b.linear(23, act="relu")  # one pixel: 5 rows of four filters, 3 left to the one-row loop
    b.linear(5)
    return b.build()


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn"])
def test_dense_quad_kernels_match_the_host_on_the_m0plus(numeric: str, tmp_path: Path) -> None:
    gf = dense_graph()
    shape = gf.tensors["input"].shape
    x = np.random.default_rng(13).normal(size=(3, *shape)).astype(np.float32)
    g = quantize(gf, numeric, x)
    got, want = device_and_host_outputs(g, x, "dense", tmp_path)
    assert len(np.unique(want)) > 3
    assert np.array_equal(got, want)
