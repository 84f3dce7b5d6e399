"""Post-training quantization (uint8 / int8 / qmn) and QAT on a trained LeNet-Light: accuracy close to
float, and the exact QuantParams layout the code generator relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from compress_fixtures import digits_data, trained_lenet_light

from harness.compress import irexec
from harness.compress.export import export_graph
from harness.compress.quantize import pow2_frac, qat_finetune, quantize_graph
from harness.compress.train import accuracy, train


def _graph_acc(graph, ds) -> float:
    from harness.codegen.reference import run

    out = run(graph, ds.x_test)
    return float((out.argmax(1) == ds.y_test).mean() * 100)


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn"])
def test_ptq_accuracy_within_two_points_of_float(numeric):
    ds = digits_data()
    model, float_acc, _ = trained_lenet_light()
    qg = quantize_graph(export_graph(model, ds.input_shape), ds.x_train[:256], numeric)
    fq_acc = float((irexec.run(qg, ds.x_test, fake_quantize=True).argmax(1) == ds.y_test).mean() * 100)
    assert abs(fq_acc - float_acc) <= 2.0
    assert abs(_graph_acc(qg, ds) - float_acc) <= 2.0


def test_uint8_layout():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    g = export_graph(model, ds.input_shape)
    qg = quantize_graph(g, ds.x_train[:128], "uint8")
    assert qg.numeric == "uint8"
    for name, arr in qg.constants.items():
        t = qg.tensors[name]
        assert arr.dtype == np.uint8 and t.dtype == "uint8" and t.quant.scheme == "affine"
        real = (arr.astype(np.float64) - t.quant.zero_point[0]) * t.quant.scale[0]
        np.testing.assert_allclose(real, g.constants[name], atol=t.quant.scale[0] / 2 + 1e-7)
    for name in qg.activation_names():
        q = qg.tensors[name].quant
        assert qg.tensors[name].dtype == "uint8" and 0 <= q.zero_point[0] <= 255 and q.scale[0] > 0
    # fused relu outputs have zero point 0 (range starts at 0); pools/flatten reuse input params
    conv1 = qg.nodes[0]
    assert conv1.attrs["act"] == "relu" and qg.tensors[conv1.outputs[0]].quant.zero_point == [0]
    for n in qg.nodes:
        if n.op in ("maxpool2d", "flatten"):
            assert qg.tensors[n.outputs[0]].quant == qg.tensors[n.inputs[0]].quant


def test_int8_per_channel_weights_and_int32_bias():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    import torch

    model.fc.bias = torch.nn.Parameter(torch.linspace(-0.5, 0.5, 10))  # give the linear a bias to check
    g = export_graph(model, ds.input_shape)
    qg = quantize_graph(g, ds.x_train[:128], "int8")
    w = qg.tensors["conv2.weight"]
    assert qg.constants["conv2.weight"].dtype == np.int8 and w.quant.scheme == "symmetric" and w.quant.axis == 0
    assert len(w.quant.scale) == qg.constants["conv2.weight"].shape[0] and set(w.quant.zero_point) == {0}
    assert np.abs(qg.constants["conv2.weight"]).max(axis=(1, 2, 3)).min() == 127  # per-channel full range
    b = qg.tensors["fc.bias"]
    s_in = qg.tensors[qg.nodes[-1].inputs[0]].quant.scale[0]
    assert qg.constants["fc.bias"].dtype == np.int32 and b.dtype == "int32"
    np.testing.assert_allclose(b.quant.scale, np.asarray(qg.tensors["fc.weight"].quant.scale) * s_in, rtol=1e-12)
    np.testing.assert_array_equal(qg.constants["fc.bias"], np.round(g.constants["fc.bias"] / np.asarray(b.quant.scale)))
    a = qg.tensors[qg.inputs[0]].quant
    assert a.dtype == "int8" and a.scheme == "affine" and -128 <= a.zero_point[0] <= 127


def test_qmn_follows_the_seed_rule():
    ds = digits_data()
    model, _, _ = trained_lenet_light()
    g = export_graph(model, ds.input_shape)
    qg = quantize_graph(g, ds.x_train[:128], "qmn")
    for name, w in g.constants.items():
        t = qg.tensors[name]
        expected = 7 - math.ceil(math.log2(float(np.abs(w).max())))
        assert t.quant.scheme == "pow2" and t.quant.frac_bits == expected
        np.testing.assert_array_equal(qg.constants[name], np.clip(np.round(w * 2.0**expected), -128, 127))
    x_max = float(np.abs(ds.x_train[:128]).max())
    assert qg.tensors[qg.inputs[0]].quant.frac_bits == pow2_frac(x_max) == 7 - math.ceil(math.log2(x_max))


def test_qmn_bias_frac_is_input_plus_weight_frac():
    ds = digits_data()
    import torch

    from harness.compress.models import build_model

    torch.manual_seed(0)
    g = export_graph(build_model("lenet", ds.input_shape, 10).eval(), ds.input_shape)
    qg = quantize_graph(g, ds.x_train[:64], "qmn")
    for n in qg.nodes:
        if n.op in ("conv2d", "linear"):
            fx, fw, fb = (qg.tensors[t].quant.frac_bits for t in n.inputs)
            assert fb == fx + fw and qg.constants[n.inputs[2]].dtype == np.int32


def test_qat_keeps_accuracy_and_exports_quantizable_weights():
    ds = digits_data()
    model, float_acc, _ = trained_lenet_light()
    tuned = qat_finetune(model, "uint8", lambda m: train(m, ds.x_train, ds.y_train, epochs=1, lr=5e-4, progress=lambda *a: None))
    assert not hasattr(tuned.conv1, "parametrizations")  # fake-quant stripped after training
    assert accuracy(tuned, ds.x_test, ds.y_test) >= float_acc - 2.0
    qg = quantize_graph(export_graph(tuned, ds.input_shape), ds.x_train[:256], "uint8")
    assert _graph_acc(qg, ds) >= float_acc - 2.0


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn"])
def test_quantized_resnet_runs_on_the_codegen_reference(numeric):
    """The contract with code generation: residual adds, folded BN and every quant mode are accepted
    by the integer reference and stay close to the float graph."""
    import torch

    from harness.codegen import reference
    from harness.compress.models import build_model

    ds = digits_data()
    torch.manual_seed(0)
    model = build_model("resnet", ds.input_shape, 10).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    g = export_graph(model, ds.input_shape)
    qg = quantize_graph(g, ds.x_train[:128], numeric)
    x = ds.x_test[:16]
    ref, flt = reference.run(qg, x), irexec.run(g, x)
    assert np.abs(ref - flt).max() <= 0.03 * np.abs(flt).max()
    assert np.corrcoef(ref.ravel(), flt.ravel())[0, 1] > 0.999


@pytest.mark.parametrize("numeric", ["uint8", "int8", "qmn"])
def test_integer_reference_agrees_with_fake_quant_predictions(numeric):
    """The numpy integer reference (ground truth for the C code) and the torch fake-quant forward
    pass predict the same class on >= 99 % of the held-out images."""
    from harness.codegen.reference import run

    ds = digits_data()
    model, _, _ = trained_lenet_light()
    qg = quantize_graph(export_graph(model, ds.input_shape), ds.x_train[:256], numeric)
    ref = run(qg, ds.x_test).argmax(1)
    fq = irexec.run(qg, ds.x_test, fake_quantize=True).argmax(1)
    assert (ref == fq).mean() >= 0.99
