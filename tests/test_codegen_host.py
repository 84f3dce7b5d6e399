"""Generated C compiled with host gcc reproduces the numpy reference (bit-exact for integers)."""

from __future__ import annotations

import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from harness.codegen import examples, generate, reference
from harness.codegen.hostrun import build_host, run_host
from harness.codegen.lower import lower
from harness.ir import Artifact

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")

GRAPHS = {
    "lenet": lambda: examples.lenet(seed=11),
    "alexnet": lambda: examples.alexnet(seed=12),
    "residual": lambda: examples.residual(seed=13),
    "lenet_pruned": lambda: examples.lenet(seed=14, sparsity=0.9),
}


def _check(g, x: np.ndarray, tmp: Path, **opts) -> dict:
    gen = generate(Artifact(g), tmp / "gen", **opts)
    exe = build_host(gen, tmp / "model")
    xq = reference.quantize_tensor(g.numeric, g.tensors[g.inputs[0]], x)
    want = reference.run_raw(g, xq).reshape(len(x), -1)
    got = run_host(exe, g.numeric, xq, want.shape[1])
    if g.numeric == "float32":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    else:
        assert got.dtype == want.dtype
        assert np.array_equal(got, want), f"{int((got != want).sum())} of {got.size} outputs differ"
    return {"gen": gen, "want": want}


@pytest.mark.parametrize("numeric", ["float32", "uint8", "int8", "qmn"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_host_c_matches_reference(name: str, numeric: str, tmp_path: Path) -> None:
    gf = GRAPHS[name]()
    rng = np.random.default_rng(zlib.crc32(f"{name}{numeric}".encode()))
    x = rng.normal(size=(6, *gf.tensors["input"].shape)).astype(np.float32)
    g = gf if numeric == "float32" else examples.quantize(gf, numeric, x)
    r = _check(g, x, tmp_path)
    assert len(np.unique(r["want"])) > 5  # outputs are not degenerate (e.g. all clamped)
    if name == "lenet_pruned":
        # 90 % element-pruned conv2 and linear are stored as CSR in every numeric mode
        storage = {row["name"]: row["storage"] for row in r["gen"].layers if row["op"] in ("conv2d", "linear")}
        assert list(storage.values()) == ["dense", "csr", "csr"], storage


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn", "float32"])
def test_forced_csr_and_dsp_weight_order_match_reference(numeric: str, tmp_path: Path) -> None:
    """Every layer as CSR, then every dense row in DSP order (portable fallback on the host)."""
    gf = examples.residual(seed=21)
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 8, 12, 12)).astype(np.float32)
    g = gf if numeric == "float32" else examples.quantize(gf, numeric, x)
    r = _check(g, x, tmp_path / "csr", sparse="csr")
    assert all(row["storage"] == "csr" for row in r["gen"].layers if row["op"] in ("conv2d", "linear"))
    r = _check(g, x, tmp_path / "dsp", dsp=True, sparse="dense")
    assert r["gen"].defines == {"NNRT_USE_DSP": "1"}


def test_generated_api_and_metadata(tmp_path: Path) -> None:
    gf = examples.lenet(seed=1)
    x = np.random.default_rng(0).normal(size=(4, 1, 28, 28)).astype(np.float32)
    g = examples.quantize(gf, "uint8", x)
    art = Artifact(g)
    gen = generate(art, tmp_path)
    h = (tmp_path / "model.h").read_text()
    defines = dict(re.findall(r"#define (MODEL_\w+) (.+)", h))
    assert defines["MODEL_NAME"] == '"lenet_light"'
    assert defines["MODEL_HASH"] == f'"{art.content_hash()}"' and gen.model_hash == art.content_hash()
    assert defines["MODEL_NUMERIC"] == '"uint8"'
    assert int(defines["MODEL_INPUT_BYTES"]) == 784 and int(defines["MODEL_OUTPUT_BYTES"]) == 10
    assert int(defines["MODEL_OUTPUT_COUNT"]) == 10
    assert int(defines["MODEL_ARENA_BYTES"]) == gen.arena_bytes
    for fn in ("uint8_t *model_input(void);", "const uint8_t *model_output(void);", "void model_run(void);"):
        assert fn in h
    c = (tmp_path / "model.c").read_text() + (tmp_path / "model_weights.c").read_text()
    assert "malloc" not in c and "printf" not in c
    assert gen.macs == 28 * 28 * 8 * 25 + 14 * 14 * 16 * 8 * 25 + 256 * 10
    assert {p.name for p in gen.sources} == {"model.c", "model_weights.c", "nnrt_conv_q.c", "nnrt_ops_q.c"}
    assert all(p.exists() for p in gen.sources) and all(d.is_dir() for d in gen.include_dirs)
    assert lower(g).output == g.outputs[0]


def test_hostile_node_names_compile(tmp_path: Path) -> None:
    """Node names that clash with the C API, each other after sanitizing, or C syntax."""
    g = examples.lenet(seed=3)
    for node, name in zip(g.nodes, ["arena", "model_run", "a.b", "a_b", "9x", "int"], strict=True):
        node.name = name
    x = np.random.default_rng(2).normal(size=(2, 1, 28, 28)).astype(np.float32)
    _check(examples.quantize(g, "int8", x), x, tmp_path)
