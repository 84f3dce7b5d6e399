"""Datasets as float32 arrays in [0, 1], N x C x H x W, with deterministic seeded train/test splits.

``digits`` (scikit-learn's 1797 real 8x8 handwritten digits) ships offline and is what tests and the
example campaign use; MNIST (IDX files) and CIFAR-10 (python pickle batches) are read from a local
folder the user provides (``download`` fetches them for users with internet).
"""

from __future__ import annotations

import gzip
import pickle
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.compress.errors import DatasetError

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
DATASETS = ("digits", "mnist", "cifar10")


@dataclass
class Dataset:
    """Train/test split of one dataset (float32 images in [0, 1], int64 labels)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]


def load_dataset(
    name: str, path: str | Path | None = None, resize: int | None = None, seed: int = 0, test_fraction: float = 0.2
) -> Dataset:
    """Load ``name`` ("digits", "mnist", "cifar10"); ``resize`` rescales images to a square side."""
    if name == "digits":
        ds = _digits(seed, test_fraction)
    elif name == "mnist":
        ds = _mnist(_folder(name, path))
    elif name == "cifar10":
        ds = _cifar10(_folder(name, path))
    else:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if resize and ds.x_train.shape[-1] != resize:
        ds.x_train, ds.x_test = _resize(ds.x_train, resize), _resize(ds.x_test, resize)
    return ds


def _digits(seed: int, test_fraction: float) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Dataset("digits", xtr, ytr, xte, yte, 10)


def _resize(x: np.ndarray, side: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        out = F.interpolate(torch.from_numpy(x), size=(side, side), mode="bilinear", align_corners=False)
    return out.clamp_(0, 1).numpy().astype(np.float32)


def _how_to_get(name: str, folder: Path | None) -> str:
    where = f"folder {str(folder)!r}" if folder else "no dataset folder was given"
    if name == "mnist":
        files = ", ".join(MNIST_FILES.values())
        return (
            f"MNIST not found ({where}). Put the IDX files ({files}, optionally .gz) in a folder and pass it "
            f"as dataset.path / --data-dir, or fetch them with `python -c \"from harness.compress.data import "
            f"download; download('mnist', 'data/mnist')\"` (source: {MNIST_URL})."
        )
    return (
        f"CIFAR-10 not found ({where}). Unpack {CIFAR_URL} (the python version: data_batch_1..5, test_batch) "
        f"into a folder and pass it as dataset.path / --data-dir, or run `python -c \"from "
        f"harness.compress.data import download; download('cifar10', 'data/cifar10')\"`."
    )


def _folder(name: str, path: str | Path | None) -> Path:
    folder = Path(path) if path else None
    if folder is None or not folder.is_dir():
        raise DatasetError(_how_to_get(name, folder))
    if name == "cifar10" and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    return folder


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    _, _, dtype_code, ndim = struct.unpack(">BBBB", data[:4])
    if dtype_code != 0x08:
        raise DatasetError(f"{path}: only unsigned-byte IDX files are supported")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _mnist(folder: Path) -> Dataset:
    arrays = {}
    for key, stem in MNIST_FILES.items():
        hits = [p for p in (folder / stem, folder / f"{stem}.gz") if p.exists()]
        if not hits:
            raise DatasetError(_how_to_get("mnist", folder) + f" Missing: {stem}")
        arrays[key] = _read_idx(hits[0])
    to_x = lambda a: (a.astype(np.float32) / 255.0)[:, None]  # noqa: E731
    return Dataset(
        "mnist", to_x(arrays["train_x"]), arrays["train_y"].astype(np.int64),
        to_x(arrays["test_x"]), arrays["test_y"].astype(np.int64), 10,
    )  # fmt: skip


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open("rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return x, np.asarray(d[b"labels"], dtype=np.int64)


def _cifar10(folder: Path) -> Dataset:
    train = [folder / f"data_batch_{i}" for i in range(1, 6)]
    missing = [p.name for p in [*train, folder / "test_batch"] if not p.exists()]
    if missing:
        raise DatasetError(_how_to_get("cifar10", folder) + f" Missing: {', '.join(missing)}")
    parts = [_cifar_batch(p) for p in train]
    xte, yte = _cifar_batch(folder / "test_batch")
    return Dataset("cifar10", np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), xte, yte, 10)


def download(name: str, folder: str | Path) -> Path:
    """Fetch MNIST or CIFAR-10 into ``folder`` (needs internet; never used by tests)."""
    import tarfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        for stem in MNIST_FILES.values():
            target = folder / f"{stem}.gz"
            if not target.exists():
                urllib.request.urlretrieve(MNIST_URL + f"{stem}.gz", target)
        return folder
    if name == "cifar10":
        archive = folder / "cifar-10-python.tar.gz"
        if not archive.exists():
            urllib.request.urlretrieve(CIFAR_URL, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        return folder / "cifar-10-batches-py"
    raise DatasetError(f"nothing to download for {name!r} (digits ships with scikit-learn)")
