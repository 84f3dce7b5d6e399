"""Grouped structural pruning of residual-tied channels (harness.compress.deps groups): the ResNet
of the zoo pruned at the paper's Table 4 rates loses channels on its residual paths too, runs, and
goes through export -> IR -> uint8 C code -> arm-none-eabi-gcc -> the emulated board unchanged."""

from __future__ import annotations

import functools
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from compress_fixtures import digits_data

from harness.compress import deps, irexec
from harness.compress.errors import PruningError
from harness.compress.export import count_params, export_graph
from harness.compress.models import build_model
from harness.compress.prune import (
    PruneSpec,
    RetrainConfig,
    apply_structural,
    count_weights,
    prune,
    structure_scores,
)
from harness.compress.resources import macs
from harness.compress.train import accuracy, configure_torch, seed_everything, train

QUIET = {"progress": lambda *a: None}
RESIDUAL = ("conv1", "layers.0.conv2", "layers.1.conv2", "layers.1.shortcut.0", "layers.2.conv2", "layers.2.shortcut.0")


@functools.cache
def _trained_resnet() -> torch.nn.Module:
    configure_torch(2)
    seed_everything(0)
    ds = digits_data()
    model = build_model("resnet", ds.input_shape, ds.num_classes)
    train(model, ds.x_train, ds.y_train, epochs=2, lr=5e-3, seed=0, progress=lambda *a: None)
    return model.eval()


@functools.cache
def _pruned(rate: float, allocation: str = "uniform") -> torch.nn.Module:
    spec = PruneSpec("structural", "l1", rate, "agp", 2, allocation=allocation)  # type: ignore[arg-type]
    return prune(_trained_resnet(), spec, digits_data(), RetrainConfig(epochs=1, lr=5e-3), **QUIET).model


def test_residual_producers_form_one_group_per_add_chain():
    """Identity shortcut: block 0's last conv shares the stem's channels; a 1x1 shortcut conv
    shares its block's last conv's. Only the classifier (graph output) is tied."""
    ds = digits_data()
    dep = deps.analyse(build_model("resnet", ds.input_shape, 10), ds.input_shape)
    members = {k: g.members for k, g in dep.groups.items()}
    assert members == {
        "conv1": ["conv1", "layers.0.conv2"],
        "layers.0.conv1": ["layers.0.conv1"],
        "layers.1.conv1": ["layers.1.conv1"],
        "layers.1.conv2": ["layers.1.conv2", "layers.1.shortcut.0"],
        "layers.2.conv1": ["layers.2.conv1"],
        "layers.2.conv2": ["layers.2.conv2", "layers.2.shortcut.0"],
    }
    assert dep.tied == ["fc"]
    stem = dep.groups["conv1"]
    assert stem.bns == ["bn1", "layers.0.bn2"]
    assert {c.module for c in stem.consumers} == {"layers.0.conv1", "layers.1.conv1", "layers.1.shortcut.0"}
    assert [(c.module, c.spatial) for c in dep.groups["layers.2.conv2"].consumers] == [("fc", 1)]


def test_group_l1_importance_is_the_sum_of_the_members_norms():
    ds = digits_data()
    model = _trained_resnet()
    dep = deps.analyse(model, ds.input_shape)
    scores = structure_scores(model, dep, "l1", ds, seed=0)
    block = model.layers[1]
    want = block.conv2.weight.detach().abs().sum((1, 2, 3)) + block.shortcut[0].weight.detach().abs().sum((1, 2, 3))
    torch.testing.assert_close(scores["layers.1.conv2"], want)
    torch.testing.assert_close(scores["layers.1.conv1"], block.conv1.weight.detach().abs().sum((1, 2, 3)))


def test_concat_keeps_its_producers_whole():
    """Concats stay tied (documented): channels meeting at a cat keep their width."""

    class Cat(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = torch.nn.Conv2d(1, 4, 3), torch.nn.Conv2d(1, 4, 3)
            self.c = torch.nn.Conv2d(8, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(torch.cat([self.a(x), self.b(x)], 1))

    dep = deps.analyse(Cat(), (1, 12, 12))
    assert set(dep.groups) == set() and set(dep.tied) == {"a", "b", "c"}


class _FunctionalResidual(torch.nn.Module):
    """Residual written with functional ops: torch.add, a scaled branch, a same-shape product,
    F.relu and a global mean instead of modules."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 6, 3, padding=1)
        self.a = torch.nn.Conv2d(6, 6, 3, padding=1)
        self.b = torch.nn.Conv2d(6, 6, 1)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.nn.functional.relu(self.stem(x))
        y = torch.add(self.a(s) * 0.5, s) * self.b(s)
        return self.fc(y.mean((2, 3)))


def test_functional_residual_ops_group_and_remove_exactly():
    model = _FunctionalResidual().eval()
    dep = deps.analyse(model, (1, 8, 8))
    assert {k: g.members for k, g in dep.groups.items()} == {"stem": ["stem", "a", "b"]} and dep.tied == ["fc"]
    keep = torch.tensor([0, 2, 5])
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        model.fc.weight[:, [1, 3, 4]] = 0
        model.a.weight[:, [1, 3, 4]] = 0  # consumers of the group: a and b read the stem's channels
        model.b.weight[:, [1, 3, 4]] = 0
        before = model(x)
        after = apply_structural(model, dep, {"stem": keep})(x)
    torch.testing.assert_close(after, before)
    assert (model.stem.out_channels, model.a.out_channels, model.b.in_channels, model.fc.in_features) == (3, 3, 3, 3)


def test_grouped_removal_is_exact_when_the_dropped_channels_are_unread():
    """Zero every consumer's input weights of the channels to be dropped (so they reach nothing),
    then remove them from all producers, batch norms and consumers of each group: the outputs must
    not change. Fails if any member, batch norm or consumer is sliced with the wrong indices."""
    ds = digits_data()
    torch.manual_seed(0)
    model = build_model("resnet", ds.input_shape, 10).eval()
    mods = dict(model.named_modules())
    with torch.no_grad():
        for m in mods.values():
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics: a wrong slice shows
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    dep = deps.analyse(model, ds.input_shape)
    keep = {}
    with torch.no_grad():
        for name, g in dep.groups.items():
            idx = torch.arange(g.channels)
            drop = idx[idx % 3 == 1]  # interleaved: catches "first channels kept" bugs
            for c in g.consumers:
                mods[c.module].weight[:, drop] = 0
            keep[name] = idx[idx % 3 != 1]
        x = torch.from_numpy(ds.x_test[:8])
        before = model(x)
        pruned = apply_structural(model, dep, keep)
        after = pruned(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    for layer in RESIDUAL:
        assert mods[layer].out_channels == len(keep[dep.group_of[layer]])
    assert pruned.fc.in_features == pruned.layers[2].conv2.out_channels == pruned.layers[2].shortcut[0].out_channels


@pytest.mark.parametrize("rate", [0.932, 0.987, 0.996])
def test_table4_resnet_rates_are_reached_with_narrower_residual_channels(rate):
    ds = digits_data()
    base, pruned = _trained_resnet(), _pruned(rate)
    assert 1 - count_weights(pruned) / count_weights(base) >= rate
    m = pruned
    assert m.conv1.out_channels == m.layers[0].conv2.out_channels == m.layers[0].conv1.in_channels < 16
    assert m.layers[1].conv2.out_channels == m.layers[1].shortcut[0].out_channels == m.layers[2].conv1.in_channels < 32
    assert m.layers[2].conv2.out_channels == m.layers[2].shortcut[0].out_channels == m.fc.in_features < 64
    assert m.layers[2].bn2.num_features == m.layers[2].shortcut[1].num_features == m.fc.in_features
    out = m(torch.from_numpy(ds.x_test[:4]))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_pruned_resnet_export_matches_torch_on_the_ir_executor():
    """The exported IR (batch norm folded, ReLU fused into the add) computes what torch computes,
    so the host accuracy through the IR equals torch's."""
    ds = digits_data()
    base, m = _trained_resnet(), _pruned(0.932)
    graph = export_graph(m, ds.input_shape)
    full = export_graph(base, ds.input_shape)
    ir_out = irexec.run(graph, ds.x_test)
    with torch.no_grad():
        torch_out = m(torch.from_numpy(ds.x_test)).numpy()
    np.testing.assert_allclose(ir_out, torch_out, rtol=1e-4, atol=1e-4 * float(np.abs(torch_out).max()))
    ir_acc = float((ir_out.argmax(1) == ds.y_test).mean() * 100)
    assert abs(ir_acc - accuracy(m, ds.x_test, ds.y_test)) <= 0.3
    assert count_params(graph)[0] < 0.1 * count_params(full)[0]
    assert macs(graph) < 0.15 * macs(full)


@pytest.mark.parametrize("allocation", ["macs", "latency"])
def test_resource_aware_allocation_works_with_groups(allocation):
    """Same parameter rate, fewer MACs than the uniform allocation, residual groups pruned too."""
    ds = digits_data()
    base = _trained_resnet()
    uni, res = _pruned(0.987), _pruned(0.987, allocation)
    assert count_weights(res) <= 0.013 * count_weights(base)
    assert macs(export_graph(res, ds.input_shape)) < 0.8 * macs(export_graph(uni, ds.input_shape))
    assert res.layers[1].conv2.out_channels == res.layers[1].shortcut[0].out_channels < 32


def test_prune_layers_names_a_residual_group_through_any_member():
    ds = digits_data()
    base = build_model("resnet", ds.input_shape, 10)
    spec = PruneSpec("structural", "l1", None, "one-shot", layers=["layers.1.shortcut.0"], channels=[8])
    m = prune(base, spec, ds, RetrainConfig(epochs=0), **QUIET).model
    assert m.layers[1].conv2.out_channels == m.layers[1].shortcut[0].out_channels == m.layers[2].conv1.in_channels == 24
    assert m.layers[1].conv1.out_channels == 32
    both = PruneSpec("structural", "l1", None, layers=["layers.1.conv2", "layers.1.shortcut.0"], channels=[1, 1])
    with pytest.raises(PruningError, match="share their channels"):
        prune(base, both, ds, RetrainConfig(epochs=0))


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
def test_pruned_resnet_uint8_builds_and_runs_on_the_emulated_nano(tmp_path: Path):
    """The pruned ResNet's uint8 C code builds for the simulated Nano 33 BLE and, on the emulated
    core, outputs exactly the bytes of the codegen's integer reference executor."""
    from harness.build import build_firmware
    from harness.codegen.io import encode_input
    from harness.codegen.reference import run_raw
    from harness.compress.quantize import quantize_graph
    from harness.config import load_board
    from harness.dut import DutLink
    from harness.ir import Artifact
    from harness.sim import board as sim_board

    ds = digits_data()
    m = _pruned(0.987)
    qg = quantize_graph(export_graph(m, ds.input_shape), ds.x_train[:128], "uint8")
    art = Artifact(graph=qg, metadata={"model": "resnet", "source": "test_compress_resnet_groups"})
    cfg = load_board("sim-nano33ble")
    fw = build_firmware(art.save(tmp_path / "artifact"), cfg, tmp_path / "fw")
    assert fw.compiled and fw.footprint is not None and fw.footprint.fits and fw.model_stats.macs == macs(qg)
    inp = encode_input(qg, ds.x_test[0])
    expected = run_raw(qg, np.frombuffer(inp, dtype=np.uint8).reshape(1, *ds.input_shape)).astype(np.uint8).tobytes()
    board = sim_board.SimBoard(cfg, persist=False)
    board.program(fw.elf)
    board.start()
    try:
        with DutLink(board.serial_url, timeout=30) as dut:
            dut.resync()
            assert dut.identify().model_hash == art.content_hash()
            dut.load_input(inp)
            res = dut.infer(1, warmup=0, gap_us=0)
            assert res.checksums == [zlib.crc32(expected)]
            assert dut.results() == expected
    finally:
        board.stop()


@pytest.mark.parametrize("heuristic", ["l2", "gradient", "apoz", "random"])
def test_every_structural_heuristic_scores_residual_groups(heuristic):
    """Each heuristic ranks a group's channels over all its members (gradient and APoZ included)."""
    ds = digits_data()
    base = _trained_resnet()
    spec = PruneSpec("structural", heuristic, 0.9, "one-shot")
    m = prune(base, spec, ds, RetrainConfig(epochs=0), **QUIET).model
    assert count_weights(m) <= 0.1 * count_weights(base)
    assert m.layers[2].conv2.out_channels == m.layers[2].shortcut[0].out_channels == m.fc.in_features < 64
    assert torch.isfinite(m(torch.from_numpy(ds.x_test[:2]))).all()
