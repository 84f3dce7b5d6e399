"""torch -> IR export (BN folding, ReLU fusion) checked against torch by an independent numpy
interpreter; ONNX import; unsupported ops in user models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compress_fixtures import digits_data
from torch import nn

from harness.compress.errors import UnsupportedModelError
from harness.compress.export import export_graph
from harness.compress.models import build_model
from harness.compress.onnx_import import export_onnx, import_onnx
from harness.errors import HarnessError
from harness.ir import Artifact, Graph
from harness.ir_meta import ArtifactMetadata

# ------------------------------------------------------------- a small float numpy interpreter


def _conv(x, w, b, stride, pad, groups):
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh, ow = (h + 2 * pad[0] - kh) // stride[0] + 1, (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.float64)
    og = o // groups
    for g in range(groups):
        xs = xp[:, g * cg : (g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i : i + stride[0] * oh : stride[0], j : j + stride[1] * ow : stride[1]]
                out[:, g * og : (g + 1) * og] += np.einsum("nchw,oc->nohw", patch, w[g * og : (g + 1) * og, :, i, j])
    return out + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def _pool(x, k, s, p, kind):
    _, _, h, w = x.shape
    fill = -np.inf if kind == "max" else np.nan
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=fill)
    oh, ow = (h + 2 * p[0] - k[0]) // s[0] + 1, (w + 2 * p[1] - k[1]) // s[1] + 1
    win = np.stack([xp[:, :, i : i + s[0] * oh : s[0], j : j + s[1] * ow : s[1]] for i in range(k[0]) for j in range(k[1])])
    return win.max(0) if kind == "max" else np.nanmean(win, 0)  # nan padding = count_include_pad False


def _act(y, act):
    return {None: y, "relu": np.maximum(y, 0), "relu6": np.clip(y, 0, 6)}[act]


def run_numpy(graph: Graph, x: np.ndarray) -> np.ndarray:
    env = {**{k: v.astype(np.float64) for k, v in graph.constants.items()}, graph.inputs[0]: x.astype(np.float64)}
    for n in graph.nodes:
        a, ins = n.attrs, [env[i] for i in n.inputs]
        if n.op == "conv2d":
            y = _act(_conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a["stride"], a["padding"], a["groups"]), a["act"])
        elif n.op == "linear":
            y = _act(ins[0] @ ins[1].T + (ins[2] if len(ins) > 2 else 0), a["act"])
        elif n.op == "add":
            y = _act(ins[0] + ins[1], a["act"])
        elif n.op in ("maxpool2d", "avgpool2d"):
            y = _pool(ins[0], a["kernel"], a["stride"], a["padding"], n.op[:3])
        elif n.op == "flatten":
            y = ins[0].reshape(len(ins[0]), -1)
        elif n.op in ("relu", "relu6"):
            y = _act(ins[0], n.op)
        else:
            raise AssertionError(f"unexpected op {n.op}")
        env[n.outputs[0]] = y
    return env[graph.outputs[0]]


def _randomise_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics so folding is actually exercised."""
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=gen) - 0.5)


@pytest.mark.parametrize("arch", ["lenet-light", "lenet", "resnet", "cifar10-cmsis"])
def test_exported_graph_matches_torch(arch):
    digits = digits_data()
    torch.manual_seed(0)
    model = build_model(arch, digits.input_shape, 10)
    _randomise_bn(model)
    model.eval()
    graph = export_graph(model, digits.input_shape, arch)
    ops = [n.op for n in graph.nodes]
    assert "batch_norm" not in ops
    fused = [n.attrs["act"] for n in graph.nodes if n.op in ("conv2d", "linear", "add")]
    assert "relu" in fused
    if arch != "cifar10-cmsis":  # its ReLU follows a pool and must stay a separate op
        assert "relu" not in ops
    x = digits.x_test[:4]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_numpy(graph, x), ref, rtol=1e-4, atol=1e-4)


def test_resnet_export_has_residual_adds_with_fused_relu():
    digits = digits_data()
    graph = export_graph(build_model("resnet", digits.input_shape, 10).eval(), digits.input_shape, "resnet")
    adds = [n for n in graph.nodes if n.op == "add"]
    assert len(adds) == 3 and all(n.attrs["act"] == "relu" for n in adds)
    # folded BN gave the bias-free convs a bias
    convs = [n for n in graph.nodes if n.op == "conv2d"]
    assert all(len(n.inputs) == 3 for n in convs)


def test_artifact_round_trip(tmp_path):
    digits = digits_data()
    graph = export_graph(build_model("lenet", digits.input_shape, 10).eval(), digits.input_shape, "lenet")
    art = Artifact(graph, ArtifactMetadata(model="lenet", input_shape=[1, 28, 28]))
    art.save(tmp_path)
    back = Artifact.load(tmp_path)
    assert back.content_hash() == art.content_hash()
    assert [n.op for n in back.graph.nodes] == [n.op for n in graph.nodes]
    x = digits.x_test[:3]
    np.testing.assert_allclose(run_numpy(back.graph, x), run_numpy(graph, x))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.gate = nn.Sigmoid()
        self.fc = nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        y = self.conv(x)
        y = y * self.gate(y)
        return self.fc(torch.tanh(torch.flatten(y, 1)))


def test_unsupported_ops_in_user_module_are_listed():
    with pytest.raises(UnsupportedModelError) as exc:
        export_graph(Gated(), (1, 28, 28), "gated")
    msg = str(exc.value)
    assert isinstance(exc.value, HarnessError)
    for op in ("Sigmoid", "mul", "tanh"):
        assert op in msg
    assert "supported: conv2d" in msg


def test_onnx_import_matches_torch_and_lists_unsupported_ops(tmp_path):
    digits = digits_data()
    torch.manual_seed(0)
    model = build_model("resnet", digits.input_shape, 10)
    _randomise_bn(model)
    graph = import_onnx(export_onnx(model.eval(), digits.input_shape, tmp_path / "resnet.onnx"))
    x = digits.x_test[:2]
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_numpy(graph, x), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(UnsupportedModelError, match="Sigmoid"):
        import_onnx(export_onnx(Gated(), (1, 28, 28), tmp_path / "gated.onnx"))


class UserNet(nn.Module):
    """A user's module in a different style: functional pools, BN, view(x.size(0), -1)."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn, self.c2 = nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.Conv2d(6, 8, 3)
        self.fc = nn.Linear(8 * 12 * 12, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.c1(x)))
        x = torch.nn.functional.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc(x.view(x.size(0), -1))


def test_user_module_prunes_and_exports(tmp_path):
    from harness.compress.api import CompressRequest, compress
    from harness.config.campaign import CompressionSettings, ModelSettings

    comp = CompressionSettings(id="s", method="structural", heuristic="l2", schedule="one-shot", rate=0.5)
    req = CompressRequest(model=ModelSettings(id="user", arch="user", epochs=1, retrain_epochs=1), compression=comp,
                          module=UserNet())  # fmt: skip
    art = compress(req, tmp_path / "user")
    g = art.graph
    assert [n.op for n in g.nodes] == ["conv2d", "conv2d", "maxpool2d", "flatten", "linear"]
    c2 = g.constants["c2.weight"].shape
    assert c2[0] < 8 and g.constants["fc.weight"].shape == (10, c2[0] * 144)
    assert art.metadata.params_total <= 0.5 * sum(p.numel() for n, p in UserNet().named_parameters() if "bn" not in n)
    x = digits_data().x_test[:3]
    assert run_numpy(g, x).shape == (3, 10) and art.metadata.accuracy_float > 50
