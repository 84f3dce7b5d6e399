"""Model zoo shapes/parameter counts and dataset loading (offline digits, IDX and CIFAR readers)."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest
from compress_fixtures import digits_data

from harness.compress.data import load_dataset
from harness.compress.errors import DatasetError, UnknownModelError
from harness.compress.models import MODELS, build_model
from harness.errors import HarnessError


def _weights(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("arch", "shape", "expected"),
    [
        ("lenet-light", (1, 28, 28), 5_960),  # seed README
        ("alexnet-light", (3, 32, 32), 35_248),
        ("vgg-light", (3, 32, 32), 42_712),
        ("lenet", (1, 28, 28), 1_199_882),  # paper Table 1: ~1.2 M
    ],
)
def test_zoo_parameter_counts_match_the_seeds(arch, shape, expected):
    assert _weights(build_model(arch, shape, 10)) == expected


def test_table1_and_blog_layer_widths():
    lenet = build_model("lenet", (1, 28, 28), 10)
    assert lenet.fc1.in_features == 9216 and lenet.fc1.out_features == 128
    cmsis = build_model("cifar10-cmsis", (3, 32, 32), 10)
    assert cmsis.fc.in_features == 1024
    alex = build_model("alexnet", (3, 32, 32), 10)
    assert alex.fc1.in_features == 6400 and abs(_weights(alex) - 44.7e6) / 44.7e6 < 0.25


def test_unknown_model_lists_known_models():
    with pytest.raises(UnknownModelError) as exc:
        build_model("lenet-heavy", (1, 28, 28), 10)
    assert isinstance(exc.value, HarnessError)
    for name in MODELS:
        assert name in str(exc.value)


def test_digits_are_real_resized_and_split_deterministically():
    digits = digits_data()
    assert digits.x_train.shape[1:] == (1, 28, 28) and digits.x_train.dtype == np.float32
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() <= 1.0
    assert set(np.unique(digits.y_test)) == set(range(10))
    again = load_dataset("digits", resize=28, seed=0)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    other = load_dataset("digits", resize=None, seed=1)
    assert other.x_train.shape[1:] == (1, 8, 8)
    assert not np.array_equal(other.y_test, digits.y_test)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_dataset_folder_says_how_to_get_it(tmp_path, name):
    with pytest.raises(DatasetError) as exc:
        load_dataset(name, tmp_path / "nope")
    msg = str(exc.value)
    assert "not found" in msg and "download(" in msg and ("data-dir" in msg)


def _write_idx(path, arr: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_mnist_idx_reader_on_real_digit_images(tmp_path):
    digits = digits_data()
    imgs = (digits.x_test[:20, 0] * 255).round().astype(np.uint8)
    labels = digits.y_test[:20].astype(np.uint8)
    for stem, arr in [("train-images-idx3-ubyte", imgs), ("t10k-images-idx3-ubyte", imgs),
                      ("train-labels-idx1-ubyte", labels), ("t10k-labels-idx1-ubyte", labels)]:  # fmt: skip
        _write_idx(tmp_path / stem, arr)
    ds = load_dataset("mnist", tmp_path, resize=None)
    assert ds.x_test.shape == (20, 1, 28, 28)
    np.testing.assert_array_equal(ds.y_test, labels)
    np.testing.assert_allclose(ds.x_test[:, 0], imgs / 255.0, atol=1e-6)


def test_cifar_reader_and_missing_batch(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [1, 2, 3, 4]}
        (tmp_path / name).write_bytes(pickle.dumps(data))
    ds = load_dataset("cifar10", tmp_path, resize=None)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.input_shape == (3, 32, 32)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(DatasetError, match="test_batch"):
        load_dataset("cifar10", tmp_path)
