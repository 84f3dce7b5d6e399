"""CSR storage: exact kernels, per-dtype break-even, choice reported per layer."""

from __future__ import annotations

import numpy as np
import pytest

from harness.codegen import sparse as sp

RNG = np.random.default_rng(7)


def _matrix(o: int, k: int, density: float, dtype, zero=0) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        w = RNG.normal(size=(o, k)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        w = RNG.integers(info.min, info.max + 1, size=(o, k)).astype(dtype)
        w[w == zero] = zero + 1
    nz = round(density * o * k)
    mask = np.zeros(o * k, bool)
    mask[RNG.choice(o * k, nz, replace=False)] = True
    w.reshape(-1)[~mask] = zero
    return w


def test_csr_layout_matches_paper_example() -> None:
    a = np.array([[10, 0, 0, 0, 1], [0, 7, 0, 2, 0], [0, 0, 8, 0, 0], [14, 0, 0, 0, 6]], np.int8)
    c = sp.to_csr(a)
    assert c.values.tolist() == [10, 1, 7, 2, 8, 14, 6]
    assert c.col.tolist() == [0, 4, 1, 3, 2, 0, 4] and c.col.dtype == np.uint16
    assert c.row.tolist() == [0, 2, 4, 5, 7] and c.row.dtype == np.uint16


@pytest.mark.parametrize("dtype,zero", [(np.int8, 0), (np.uint8, 128), (np.float32, 0)])
def test_csr_matmul_equals_dense(dtype, zero) -> None:
    w = _matrix(24, 75, 0.2, dtype, zero)
    cols = RNG.integers(-255, 256, size=(75, 9)).astype(np.int64)
    c = sp.to_csr(w, zero)
    want = (w.astype(np.float64 if np.dtype(dtype).kind == "f" else np.int64) - zero) @ cols
    got = sp.csr_matmul(c, cols, zero)
    if np.dtype(dtype).kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-9)
    else:
        assert np.array_equal(got, want)


@pytest.mark.parametrize("dtype,value_bytes", [(np.float32, 4), (np.int8, 1)])
def test_break_even_per_dtype(dtype, value_bytes: int) -> None:
    o, k = 32, 288
    be = sp.break_even_density(o, k, value_bytes)
    assert be == pytest.approx(value_bytes / (value_bytes + 2), abs=0.01)  # 2/3 float32, 1/3 8-bit
    above = _matrix(o, k, be + 0.03, dtype)
    below = _matrix(o, k, be - 0.03, dtype)
    assert sp.choose(above, 0, "auto") == "dense"
    assert sp.choose(below, 0, "auto") == "csr"
    assert sp.csr_bytes(o, k, int(np.count_nonzero(below)), value_bytes) < sp.dense_bytes(below)
    # 50 % sparse: worth it for float32, not for 8-bit weights
    half = _matrix(o, k, 0.5, dtype)
    assert sp.choose(half, 0, "auto") == ("csr" if value_bytes == 4 else "dense")
    assert sp.choose(half, 0, "dense") == "dense" and sp.choose(half, 0, "csr") == "csr"


def test_row_pointer_width_and_limits() -> None:
    big = np.ones((300, 300), np.int8)  # 90,000 nonzeros > 65535
    c = sp.to_csr(big)
    assert c.row.dtype == np.uint32 and c.nnz == 90000
    small = _matrix(16, 100, 0.1, np.int8)
    assert sp.to_csr(small).row.dtype == np.uint16
    with pytest.raises(ValueError):
        sp.to_csr(np.ones((2, 70000), np.int8))
    assert sp.choose(np.zeros((2, 70000), np.int8), 0, "csr") == "dense"
