"""Pruning: AGP schedule (paper Eq. 1), element-wise masks, structural removal with correct
dependent channels/columns, seed-style per-layer targets, heuristics, bad rates."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from compress_fixtures import digits_data, trained_lenet_light

from harness.compress import deps
from harness.compress.errors import PruningError
from harness.compress.export import count_params, export_graph
from harness.compress.models import build_model
from harness.compress.prune import (
    Masks,
    PruneSpec,
    RetrainConfig,
    agp_schedule,
    apply_structural,
    count_weights,
    prune,
    structure_scores,
    weight_layers,
)
from harness.compress.train import accuracy

QUIET = {"progress": lambda *a: None}


def test_agp_schedule_follows_eq1_hand_computed():
    # s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 with s_i = 0, s_f = 0.9, n = 4, dt = 1:
    # t=0: 0; t=1: 0.9 - 0.9*(3/4)^3 = 0.5203125; t=2: 0.9 - 0.9/8 = 0.7875;
    # t=3: 0.9 - 0.9/64 = 0.8859375; t=4: 0.9
    assert agp_schedule(0.0, 0.9, 4) == pytest.approx([0.0, 0.5203125, 0.7875, 0.8859375, 0.9])
    # non-zero start, t0 and dt: s_i = 0.5, s_f = 0.8, n = 2, t0 = 10, dt = 5 -> t = 10, 15, 20
    assert agp_schedule(0.5, 0.8, 2, t0=10, dt=5) == pytest.approx([0.5, 0.8 - 0.3 / 8, 0.8])


def test_element_wise_90_percent_masks_survive_retraining():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    shapes = {k: tuple(m.weight.shape) for k, m in weight_layers(model).items()}
    res = prune(model, PruneSpec("element", "magnitude", 0.9, "agp", 3), ds, RetrainConfig(epochs=2, lr=2e-3), **QUIET)
    for k, m in weight_layers(res.model).items():
        assert tuple(m.weight.shape) == shapes[k]
        assert abs(float((m.weight == 0).float().mean()) - 0.9) <= 0.01, k
    # AGP steps reached the scheduled sparsity at every step (element pruning is exact)
    for step, target in zip(res.history, agp_schedule(0.0, 0.9, 3)[1:], strict=True):
        assert step.target == pytest.approx(target)
        assert abs(step.achieved - target) < 0.01
    # the zeros are exactly the smallest-magnitude survivors: retraining did not revive them
    graph = export_graph(res.model, ds.input_shape)
    total, nonzero = count_params(graph)
    assert total == count_weights(model) and nonzero / total == pytest.approx(0.1, abs=0.01)


def test_masks_zero_gradients():
    model = build_model("lenet-light", (1, 28, 28), 10)
    masks = Masks(model)
    masks.masks["fc"][:, :100] = 0
    masks.apply()
    handles = masks.hooks()
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    for h in handles:
        h.remove()
    assert torch.all(model.fc.weight.grad[:, :100] == 0) and torch.any(model.fc.weight.grad[:, 100:] != 0)


def test_han_sensitivity_prunes_linear_layers_only():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    w = model.fc.weight.detach()
    expected = float((w.abs() < 0.8 * w.std()).float().mean())
    res = prune(model, PruneSpec("element", "magnitude", None, sensitivity=0.8), ds, RetrainConfig(epochs=0), **QUIET)
    assert res.sparsity["fc"] == pytest.approx(expected, abs=1e-6) and expected > 0.3
    assert res.sparsity["conv1"] == 0 and res.sparsity["conv2"] == 0


@pytest.mark.parametrize("arch", ["lenet", "lenet-light"])
def test_structural_removal_keeps_the_right_columns(arch):
    """Zero the filters to be removed, then remove them: outputs must not change at all (this fails
    if the next conv's input channels or the linear's flatten columns are picked wrongly)."""
    ds = digits_data()
    torch.manual_seed(0)
    model = build_model(arch, ds.input_shape, 10).eval()
    dep = deps.analyse(model, ds.input_shape)
    layers = dict(model.named_modules())
    keep = {}
    with torch.no_grad():
        for name, g in dep.groups.items():
            idx = torch.arange(g.channels)
            drop = idx[idx % 3 == 1]  # an interleaved pattern catches "first columns kept" bugs
            layers[name].weight[drop] = 0
            if layers[name].bias is not None:
                layers[name].bias[drop] = 0
            keep[name] = idx[idx % 3 != 1]
        x = torch.from_numpy(ds.x_test[:8])
        before = model(x)
        pruned = apply_structural(model, dep, keep)
        after = pruned(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    graph = export_graph(pruned, ds.input_shape)
    assert count_params(graph)[0] == count_weights(pruned) < count_weights(build_model(arch, ds.input_shape, 10))


def test_structural_resnet_prunes_inner_and_residual_channels():
    """Residual-tied convs are pruned as groups (see test_compress_resnet_groups.py for more)."""
    ds = digits_data()
    model = build_model("resnet", ds.input_shape, 10)
    dep = deps.analyse(model, ds.input_shape)
    assert dep.group_of["layers.0.conv2"] == "conv1" and dep.tied == ["fc"]
    res = prune(model, PruneSpec("structural", "l1", 0.3, "one-shot"), ds, RetrainConfig(epochs=0.1), **QUIET)
    m = res.model
    assert m.layers[1].conv1.out_channels < 32 and m.layers[1].bn1.num_features == m.layers[1].conv1.out_channels
    assert m.layers[1].conv2.in_channels == m.layers[1].conv1.out_channels
    assert m.layers[1].conv2.out_channels == m.layers[1].shortcut[0].out_channels < 32
    assert res.history[-1].achieved >= 0.3
    graph = export_graph(m, ds.input_shape)
    assert count_params(graph)[0] < count_params(export_graph(model, ds.input_shape))[0]


def test_seed_style_absolute_channels():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    spec = PruneSpec("structural", "l1", None, "agp", 2, layers=["conv1", "conv2"], channels=[2, 4])
    res = prune(model, spec, ds, RetrainConfig(epochs=0.2), **QUIET)
    m = res.model
    assert (m.conv1.out_channels, m.conv2.in_channels, m.conv2.out_channels) == (6, 6, 12)
    assert m.fc.in_features == 12 * 16
    with pytest.raises(PruningError, match="prunable layers are"):
        prune(model, PruneSpec("structural", "l1", None, layers=["fc"], channels=[1]), ds, RetrainConfig(epochs=0))
    with pytest.raises(PruningError, match="cannot remove 8"):
        prune(model, PruneSpec("structural", "l1", None, layers=["conv1"], channels=[8]), ds, RetrainConfig(epochs=0))


@pytest.mark.parametrize("heuristic", ["l1", "l2", "gradient", "apoz", "random"])
def test_structural_heuristics_meet_the_rate(heuristic):
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    res = prune(model, PruneSpec("structural", heuristic, 0.5, "one-shot"), ds, RetrainConfig(epochs=0), **QUIET)
    assert 0.5 <= res.history[-1].achieved < 0.7
    assert count_weights(res.model) <= 0.5 * count_weights(model)


def test_l1_keeps_the_largest_filters():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    norms = model.conv2.weight.detach().abs().sum((1, 2, 3))
    res = prune(model, PruneSpec("structural", "l1", None, "one-shot", layers=["conv2"], channels=[6]), ds,
                RetrainConfig(epochs=0), **QUIET)  # fmt: skip
    kept = sorted(norms.argsort(descending=True)[:10].tolist())
    torch.testing.assert_close(res.model.conv2.weight, model.conv2.weight[kept])


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_rate_outside_unit_interval_is_rejected(rate):
    ds = digits_data()
    with pytest.raises(PruningError, match=r"outside \[0, 1\)"):
        prune(build_model("lenet-light", ds.input_shape, 10), PruneSpec("structural", "l1", rate), ds, RetrainConfig())


def test_structural_l1_to_10_percent_keeps_95_percent_of_accuracy():
    """Done-criterion: 90 % of the parameters removed, >= 95 % of the unpruned accuracy kept."""
    ds = digits_data()
    model, base_acc, _ = trained_lenet_light()
    res = prune(model, PruneSpec("structural", "l1", 0.9, "agp", 4), ds, RetrainConfig(epochs=16, lr=2e-3), **QUIET)
    acc = accuracy(res.model, ds.x_test, ds.y_test)
    assert count_weights(res.model) <= 0.1 * count_weights(model)
    assert acc >= 0.95 * base_acc, (acc, base_acc)
    # the artifact-level count (exported IR constants) matches the physically smaller layers
    graph = export_graph(res.model, ds.input_shape)
    shapes = {k: list(v.shape) for k, v in graph.constants.items()}
    m = res.model
    assert shapes["conv1.weight"] == [m.conv1.out_channels, 1, 5, 5]
    assert shapes["fc.weight"] == [10, m.conv2.out_channels * 16]
    assert count_params(graph)[0] == sum(int(np.prod(s)) for s in shapes.values()) == count_weights(m)




@pytest.mark.parametrize("allocation", ["macs", "latency"])
def test_resource_aware_allocation_cuts_macs_at_the_same_rate(allocation):
    """Seed 004's idea: channels priced by what they cost to run. At the same parameter rate the
    resource-aware allocation needs fewer MACs than the uniform one; every prunable layer of the
    paper's LeNet, fc1's neurons included, is pruned in both; no layer drops below half its
    uniform width."""
    from harness.compress.export import export_graph
    from harness.compress.resources import macs

    ds = digits_data()
    model = build_model("lenet", ds.input_shape, 10)
    out = {}
    for alloc in ("uniform", allocation):
        spec = PruneSpec("structural", "l1", 0.98, "one-shot", allocation=alloc)
        res = prune(model, spec, ds, RetrainConfig(epochs=0), **QUIET)
        assert count_weights(res.model) <= 0.02 * count_weights(model)
        m = res.model
        out[alloc] = ((m.conv1.out_channels, m.conv2.out_channels, m.fc1.out_features),
                      macs(export_graph(m, ds.input_shape)))  # fmt: skip
    (uni, uni_macs), (res_w, res_macs) = out["uniform"], out[allocation]
    assert all(w < full for w, full in zip(uni, (32, 64, 128), strict=True))
    assert all(w < full for w, full in zip(res_w, (32, 64, 128), strict=True))
    assert all(r >= -(-u // 2) for r, u in zip(res_w, uni, strict=True))
    assert res_macs < 0.8 * uni_macs, (out, allocation)


def test_unknown_allocation_is_rejected():
    with pytest.raises(PruningError, match="allocation"):
        PruneSpec("structural", "l1", 0.5, allocation="flops").validate()  # type: ignore[arg-type]


def test_gradient_heuristic_on_frozen_layer_is_a_pruning_error():
    """Frozen weights have no .grad: the gradient heuristic names the layer instead of crashing on
    None (found by mypy)."""
    ds = digits_data()
    model = copy.deepcopy(trained_lenet_light()[0])
    model.conv1.weight.requires_grad_(False)
    with pytest.raises(PruningError, match=r"conv1.*no gradient"):
        structure_scores(model, deps.analyse(model, ds.input_shape), "gradient", ds, seed=0)
