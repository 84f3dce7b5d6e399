"""The compression stage end to end: API (artifact folder, metadata, caching, accuracy-targeted rate
search, resource budget, ONNX input) and the `harness compress` CLI including its error messages."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from compress_fixtures import digits_data, trained_lenet_light
from typer.testing import CliRunner

from harness.compress.api import CompressRequest, compress, compress_from_campaign
from harness.compress.errors import DatasetError, PruningError, UnknownModelError, UnsupportedModelError
from harness.compress.export import export_graph
from harness.compress.onnx_import import export_onnx, import_onnx
from harness.compress.resources import estimate
from harness.config.campaign import CompressionSettings, DatasetSettings, ModelSettings
from harness.ir import Artifact

LL = ModelSettings(id="ll", arch="lenet-light", epochs=15, retrain_epochs=8, lr=2e-3)


def test_lenet_light_trains_to_95_percent_in_under_two_minutes():
    _, acc, seconds = trained_lenet_light()
    assert acc >= 95.0 and seconds < 120


def test_compress_writes_a_self_describing_artifact(tmp_path):
    comp = CompressionSettings(id="s90", method="structural", heuristic="l1", schedule="agp", rate=0.9)
    art = compress_from_campaign(LL, comp, "uint8", DatasetSettings(), 0, tmp_path / "ll-s90-uint8")
    out = tmp_path / "ll-s90-uint8"
    assert {p.name for p in out.iterdir()} >= {"artifact.json", "weights.npz", "model.onnx", "samples.npz"}
    back = Artifact.load(out)
    assert back.content_hash() == art.content_hash()
    md, g = back.metadata, back.graph
    for key in ("model", "dataset", "seed", "compression", "accuracy_float", "accuracy_quant", "params_total",
                "params_nonzero", "macs", "input_shape", "num_classes", "input_quant", "accuracy_quant_method"):  # fmt: skip
        assert getattr(md, key) is not None, key
    assert g.numeric == "uint8" and md.input_shape == [1, 28, 28] and md.num_classes == 10
    assert md.input_quant == {**md.input_quant, "scheme": "affine", "dtype": "uint8"}
    assert md.input_quant["scale"] == g.tensors[g.inputs[0]].quant.scale
    # physically smaller layers, and the counts agree with them
    w1, w2, wf = (g.constants[k].shape for k in ("conv1.weight", "conv2.weight", "fc.weight"))
    assert w1[0] < 8 and w2 == (w2[0], w1[0], 5, 5) and wf == (10, w2[0] * 16)
    assert md.params_total == sum(c.size for c in g.constants.values()) <= 0.1 * 5960
    assert md.compression.achieved_rate >= 0.9 and md.compression.selected_rate == 0.9
    assert md.macs == estimate(g).macs > 0
    assert md.accuracy_float >= 0.95 * md.accuracy_baseline
    assert abs(md.accuracy_quant - md.accuracy_float) <= 2.0
    samples = np.load(out / "samples.npz")
    assert samples["x"].shape == (64, 1, 28, 28) and samples["x"].dtype == np.float32 and samples["y"].shape == (64,)
    onnx_graph = import_onnx(out / "model.onnx")
    assert onnx_graph.constants["conv1.weight"].shape == w1
    # float32 variant of the same settings reuses the cached baseline and pruning run
    art32 = compress_from_campaign(LL, comp, "float32", DatasetSettings(), 0, tmp_path / "ll-s90-float32")
    cache = sorted(p.name.split("-")[0] for p in (tmp_path / "_cache").iterdir())
    assert cache == ["baseline", "pruned"]
    assert art32.graph.constants["fc.weight"].shape == wf
    assert art32.metadata.accuracy_float == md.accuracy_float


def test_accuracy_target_picks_the_highest_passing_rate_deterministically(tmp_path):
    model = ModelSettings(id="ll", arch="lenet-light", epochs=10, retrain_epochs=1, lr=2e-3)
    comp = CompressionSettings(id="t", method="element", heuristic="magnitude", schedule="agp", agp_steps=2,
                               target_relative_accuracy=0.97, candidate_rates=[0.3, 0.6, 0.995])  # fmt: skip
    md = compress_from_campaign(model, comp, "float32", DatasetSettings(), 0, tmp_path / "a").metadata
    trail = md.compression.search
    passed = [t.rate for t in trail if t.passed]
    assert md.compression.selected_rate == (max(passed) if passed else 0.0)
    assert [t.rate for t in trail] == [0.3, 0.6, 0.995]  # every candidate is tried (no early stop)
    assert trail[-1].rate == 0.995 and not trail[-1].passed  # 99.5 % sparsity cannot keep 97 %
    for t in trail:
        assert t.passed == (t.relative >= 0.97)
    assert md.accuracy_float >= 0.97 * md.accuracy_baseline
    again = compress_from_campaign(model, comp, "float32", DatasetSettings(), 0, tmp_path / "fresh" / "b")
    assert again.metadata.compression.search == trail  # fresh cache, same seed: same result
    assert again.metadata.accuracy_float == md.accuracy_float


def test_resource_budget_is_met(tmp_path):
    req = CompressRequest(model=LL.model_copy(update={"retrain_epochs": 2}), numeric="uint8", max_flash=1500, max_macs=200_000)
    art = compress(req, tmp_path / "budget")
    est = estimate(art.graph)
    assert est.flash_bytes <= 1500 and est.macs <= 200_000
    assert art.metadata.resources_estimate["flash_bytes"] == est.flash_bytes
    assert art.graph.constants["conv1.weight"].shape[0] < 8
    with pytest.raises(PruningError, match="cannot be met"):
        compress(CompressRequest(model=LL, numeric="uint8", max_flash=10), tmp_path / "impossible")


def test_user_onnx_model_is_quantized_not_pruned(tmp_path):
    ds = digits_data()
    model, float_acc, _ = trained_lenet_light()
    path = export_onnx(model, ds.input_shape, tmp_path / "user.onnx")
    user = ModelSettings(id="user", arch=str(path))
    art = compress(CompressRequest(model=user, numeric="int8"), tmp_path / "u")
    assert art.graph.numeric == "int8" and abs(art.metadata.accuracy_quant - float_acc) <= 2.0
    assert (tmp_path / "u" / "model.onnx").read_bytes() == path.read_bytes()
    comp = CompressionSettings(id="s", method="structural", rate=0.5)
    with pytest.raises(PruningError, match="ONNX"):
        compress(CompressRequest(model=user, compression=comp), tmp_path / "v")


class Swish(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 26 * 26, 10)

    def forward(self, x):
        y = self.conv(x)
        return self.fc(torch.flatten(y * torch.sigmoid(y), 1))


# ------------------------------------------------------------------------------------------- CLI


def _cli(args: list[str]):
    from harness.cli import app

    return CliRunner().invoke(app, ["compress", *args])


def test_cli_seed_style_flags(tmp_path):
    out = tmp_path / "seed"
    res = _cli(["--model", "lenet-light", "--epochs", "3", "--retrain-epochs", "1", "--prune-layers", "conv1", "conv2",
                "--prune-channels", "2", "4", "--sensitivity", "0.8", "--quant", "qmn", "--out", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output + repr(res.exception)
    g = Artifact.load(out).graph
    assert g.constants["conv1.weight"].shape[0] == 6 and g.constants["conv2.weight"].shape[:2] == (12, 6)
    assert g.tensors["fc.weight"].sparsity > 0.3 and g.tensors["conv1.weight"].sparsity == 0
    assert g.numeric == "qmn" and g.tensors["fc.weight"].quant.frac_bits is not None


def test_cli_comma_lists_and_stray_arguments(tmp_path):
    res = _cli(["--epochs", "1", "--retrain-epochs", "0", "--prune-layers", "conv2", "--prune-channels", "3",
                "--out", str(tmp_path / "c")])  # fmt: skip
    assert res.exit_code == 0, repr(res.exception)
    assert Artifact.load(tmp_path / "c").graph.constants["conv2.weight"].shape[0] == 13
    res = _cli(["--epochs", "0", "stray", "--out", str(tmp_path / "d")])
    assert "unexpected argument 'stray'" in str(res.exception)


@pytest.mark.parametrize(
    ("args", "error", "needle"),
    [
        (["--model", "lenet-xl"], UnknownModelError, "known models: lenet-light, lenet, alexnet-light"),
        (["--prune", "structural:l1:1.0"], PruningError, "outside [0, 1)"),
        (["--prune", "element:magnitude:-0.2"], PruningError, "outside [0, 1)"),
        (["--dataset", "mnist", "--data-dir", "/nonexistent/mnist"], DatasetError, "download('mnist'"),
        (["--dataset", "cifar10"], DatasetError, "cifar-10-python.tar.gz"),
    ],
)
def test_cli_bad_input_gives_clear_errors(tmp_path, args, error, needle):
    res = _cli([*args, "--epochs", "0", "--out", str(tmp_path / "x")])
    assert isinstance(res.exception, error), res.output
    assert needle in str(res.exception)


def test_cli_unsupported_op_in_user_onnx(tmp_path):
    path = export_onnx(Swish(), (1, 28, 28), tmp_path / "swish.onnx")
    res = _cli(["--model", str(path), "--out", str(tmp_path / "x")])
    assert isinstance(res.exception, UnsupportedModelError)
    assert "Sigmoid" in str(res.exception) and "Mul" in str(res.exception)
    with pytest.raises(UnsupportedModelError, match="sigmoid"):
        export_graph(Swish(), (1, 28, 28))


def test_cli_error_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "compress", "--model", "nope"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert "unknown model 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_concurrent_cells_share_one_baseline_and_pruning_run(tmp_path):
    """The campaign runner prepares configurations from threads: float32 and uint8 of one setting
    must still train one baseline and prune once."""
    from concurrent.futures import ThreadPoolExecutor

    model = ModelSettings(id="ll", arch="lenet-light", epochs=2, retrain_epochs=1, lr=2e-3)
    comp = CompressionSettings(id="s50", method="structural", schedule="one-shot", rate=0.5)
    with ThreadPoolExecutor(2) as pool:
        arts = list(pool.map(lambda q: compress_from_campaign(model, comp, q, DatasetSettings(), 0, tmp_path / q,
                                                              cache_dir=tmp_path / "cache"), ["float32", "uint8"]))  # fmt: skip
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()) == ["baseline", "pruned"]
    assert arts[0].metadata.accuracy_float == arts[1].metadata.accuracy_float
    assert arts[0].graph.constants["fc.weight"].shape == arts[1].graph.constants["fc.weight"].shape
