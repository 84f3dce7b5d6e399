"""Static memory planner: no live tensors share bytes, arena <= naive sum, aliases are real."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from harness.codegen import examples, generate
from harness.codegen.lower import lower
from harness.codegen.planner import ALIGN, check_plan, estimate, plan
from harness.ir import Artifact

GRAPHS = [examples.lenet, examples.alexnet, examples.residual, lambda seed=0: examples.lenet(seed, softmax=True)]


def _quant(make, numeric: str):
    gf = make(seed=0)
    if numeric == "float32":
        return gf
    x = np.random.default_rng(0).normal(size=(4, *gf.tensors["input"].shape)).astype(np.float32)
    return examples.quantize(gf, numeric, x)


@pytest.mark.parametrize("numeric", ["float32", "int8"])
@pytest.mark.parametrize("make", GRAPHS)
def test_plan_passes_bruteforce_check_and_beats_naive(make, numeric: str) -> None:
    lw = lower(_quant(make, numeric))
    p = plan(lw)
    check_plan(lw, p)
    assert p.arena_bytes <= p.naive_bytes
    assert all(off % ALIGN == 0 for off in p.offsets.values())
    # the arena is at least the largest set of simultaneously live buffers at any step
    for i in range(len(lw.steps)):
        live = [b for b, (s, e) in p.lifetimes.items() if s <= i <= e]
        assert p.arena_bytes >= sum(p.sizes[b] for b in live)


def test_residual_reuses_memory_and_aliases() -> None:
    g = _quant(examples.residual, "int8")
    lw = lower(g)
    p = plan(lw)
    assert p.arena_bytes < 0.75 * p.naive_bytes
    flat = next(n for n in g.nodes if n.op == "flatten")
    assert p.offsets[flat.outputs[0]] == p.offsets[flat.inputs[0]]  # flatten is an alias
    relu = next(n for n in g.nodes if n.op == "relu")
    assert p.offsets[relu.outputs[0]] == p.offsets[relu.inputs[0]]  # in place: input dies here
    relu6 = next(n for n in g.nodes if n.op == "relu6")
    assert p.offsets[relu6.outputs[0]] == p.offsets[relu6.inputs[0]]
    # the add's skip input (stem) lives from the first conv through the add, which runs in place
    add = next(n for n in g.nodes if n.op == "add")
    i_add = [s.name for s in lw.steps].index(add.name)
    s0, e0 = p.lifetimes[p.root[add.inputs[0]]]
    assert s0 == 0 and e0 >= i_add
    assert p.offsets[add.outputs[0]] in (p.offsets[add.inputs[0]], p.offsets[add.inputs[1]])


def test_checker_detects_clobbering() -> None:
    lw = lower(_quant(examples.residual, "int8"))
    p = plan(lw)
    bad = copy.deepcopy(p)
    add = next(s for s in lw.steps if s.name.startswith("add"))
    stem = add.inp[0]
    # move the skip tensor on top of the depthwise output, which is written while stem is live
    dw = lw.steps[1]
    bad.offsets[stem] = p.offsets[dw.out]
    bad.offsets[lw.steps[0].out] = p.offsets[dw.out]
    with pytest.raises(AssertionError):
        check_plan(lw, bad)
    bad = copy.deepcopy(p)
    bad.offsets[lw.input] = p.offsets[lw.steps[0].out]  # input must persist for repeated runs
    with pytest.raises(AssertionError):
        check_plan(lw, bad)


@pytest.mark.parametrize("numeric", ["float32", "uint8"])
def test_estimate_agrees_with_generate(numeric: str, tmp_path) -> None:
    g = _quant(examples.alexnet, numeric)
    est = estimate(g)
    gen = generate(Artifact(g), tmp_path)
    assert est == {"weights_bytes": gen.weights_bytes, "arena_bytes": gen.arena_bytes, "macs": gen.macs}


def test_structurally_pruned_graph_is_smaller() -> None:
    full = examples.lenet(seed=0, channels=(8, 16))
    small = examples.lenet(seed=0, channels=(3, 2))
    n_full = sum(v.size for v in full.constants.values())
    n_small = sum(v.size for v in small.constants.values())
    assert n_small <= 0.1 * n_full  # ~90 % of the parameters removed with whole channels
    for numeric in ("float32", "int8"):
        ef, es = estimate(_quant(lambda seed: copy.deepcopy(full), numeric)), estimate(
            _quant(lambda seed: copy.deepcopy(small), numeric)
        )
        assert es["weights_bytes"] < 0.15 * ef["weights_bytes"]
        assert es["arena_bytes"] < ef["arena_bytes"] and es["macs"] < ef["macs"]


def test_fully_pruned_layer_builds_and_estimate_matches(tmp_path) -> None:
    """A linear layer pruned to zero (empty CSR) keeps generate() and estimate() consistent."""
    g = _quant(examples.lenet, "int8")
    w = g.nodes[-1].inputs[1]
    g.constants[w] = np.zeros_like(g.constants[w])
    gen = generate(Artifact(g), tmp_path, sparse="csr")
    est = estimate(g, sparse="csr")
    assert est["weights_bytes"] == gen.weights_bytes
    assert gen.layers[-1]["storage"] == "csr" and gen.layers[-1]["density"] == 0.0
    from harness.codegen import reference
    from harness.codegen.hostrun import build_host, run_host

    xq = reference.quantize_tensor("int8", g.tensors["input"], np.zeros((1, 1, 28, 28), np.float32))
    out = run_host(build_host(gen, tmp_path / "m"), "int8", xq, 10)
    assert np.array_equal(out, reference.run_raw(g, xq).reshape(1, 10))  # bias only, requantized


def test_dsp_scratch_covers_fast_conv_buffers() -> None:
    """generate(dsp=True): conv layers with >= 2 output pixels get the fast DSP conv's scratch
    (column pair, offset table, accumulators, padded input band; NNRT_DSP_SCRATCH_BYTES)."""
    from harness.codegen.lower import ConvStep
    from harness.codegen.planner import scratch_bytes

    g = _quant(examples.residual, "int8")
    lw = lower(g)
    p, pd = plan(lw), plan(lw, dsp=True)
    check_plan(lw, pd)
    assert pd.arena_bytes >= p.arena_bytes
    assert estimate(g, dsp=True)["arena_bytes"] == pd.arena_bytes
    convs = [st for st in lw.steps if isinstance(st, ConvStep)]
    assert convs
    for st in convs:
        kp = (st.k + 3) // 4 * 4
        npix = st.out_shape[1] * st.out_shape[2]
        c, h, w = st.in_shape
        hp, wp = h + 2 * st.padding[0], w + 2 * st.padding[1]
        rows = min(st.stride[0] + (st.kernel[0] - 1) * st.dilation[0] + 1, hp)
        pads = c // st.groups * rows * wp if any(st.padding) else 0
        want = 8 * kp + 8 * (st.out_shape[0] // st.groups) + (pads + 3) // 4 * 4 if npix >= 2 else 4 * kp
        assert pd.sizes[pd.scratch[st.name]] == scratch_bytes(st, "int8", dsp=True) == want
        # without DSP: dense rows walk four pixels at once (four int32 columns), else an int16 pair
        assert p.sizes[p.scratch[st.name]] == (16 * kp if npix >= 4 else 4 * kp)
