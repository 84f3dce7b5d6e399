"""Compressed Row Storage (CRS/CSR) of element-pruned weight matrices (seed 002, Sec. 4.1).

A conv weight is stored as its (O, K) matrix, K = Cin/groups*kh*kw (OIHW flattened), so sparse
conv is im2col + sparse matrix-vector product, like linear. A "zero" is an element equal to the
weight zero point (0 for float32/int8/qmn, z_w for uint8), which contributes nothing.

Storage: values (b bytes each: 4 float32, 1 for 8-bit), uint16 column indices (K <= 65535 holds
for every MCU-sized layer; larger K stays dense), row pointers uint16 when nnz <= 65535 else
uint32 (p = 2 or 4 bytes, O + 1 entries). Every array is padded to 4 bytes in flash.

    dense = O*K*b            csr = nnz*(b + 2) + (O + 1)*p
CSR is chosen only when csr < dense, i.e. density nnz/(O*K) < b/(b+2) - (O+1)*p/(O*K*(b+2)):
about 66.7 % density (33 % sparsity) for float32 but 33.3 % density (67 % sparsity) for 8-bit
weights, because the 16-bit index costs two bytes per stored value either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CSR:
    values: np.ndarray  # (nnz,) weight dtype
    col: np.ndarray  # (nnz,) uint16
    row: np.ndarray  # (O+1,) uint16 or uint32
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return sum(array_bytes(a) for a in (self.values, self.col, self.row))


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def array_bytes(a: np.ndarray) -> int:
    """Flash bytes of one emitted const array (4-byte aligned; an empty array still takes one item)."""
    return _pad4(max(a.nbytes, a.itemsize))


def to_csr(w: np.ndarray, zero: float | int = 0) -> CSR:
    """(O, K) matrix -> CSR of the entries != ``zero``; raises ValueError when K exceeds uint16."""
    o, k = w.shape
    if k > 0xFFFF:
        raise ValueError(f"K={k} does not fit 16-bit column indices")
    mask = w != zero
    rows, cols = np.nonzero(mask)
    counts = np.bincount(rows, minlength=o)
    row = np.concatenate([[0], np.cumsum(counts)])
    row_dtype = np.uint16 if row[-1] <= 0xFFFF else np.uint32
    return CSR(values=w[rows, cols].copy(), col=cols.astype(np.uint16), row=row.astype(row_dtype), shape=(o, k))


def dense_bytes(w: np.ndarray) -> int:
    return array_bytes(w)


def csr_bytes(o: int, k: int, nnz: int, value_bytes: int) -> int:
    """Flash bytes of the CSR form (padded like the emitted arrays)."""
    p = 2 if nnz <= 0xFFFF else 4
    return _pad4(max(nnz, 1) * value_bytes) + _pad4(max(nnz, 1) * 2) + _pad4((o + 1) * p)


def break_even_density(o: int, k: int, value_bytes: int) -> float:
    """Density below which CSR is smaller than dense (unpadded formula from the module docstring)."""
    return value_bytes / (value_bytes + 2) - (o + 1) * 2 / (o * k * (value_bytes + 2))


def choose(w: np.ndarray, zero: float | int, mode: str) -> str:
    """'csr' or 'dense' for one (O, K) weight matrix; mode is auto | dense | csr (csr = wherever legal)."""
    if mode not in ("auto", "dense", "csr"):
        raise ValueError(f"sparse mode {mode!r} is not auto, dense or csr")
    if mode == "dense" or w.shape[1] > 0xFFFF:
        return "dense"
    if mode == "csr":
        return "csr"
    nnz = int(np.count_nonzero(w != zero))
    return "csr" if csr_bytes(w.shape[0], w.shape[1], nnz, w.itemsize) < dense_bytes(w) else "dense"


def csr_matmul(c: CSR, cols: np.ndarray, zero: int | float = 0) -> np.ndarray:
    """(O, K) CSR times (K, P) columns, row by row as the C kernel does (int64 or float64)."""
    acc_t = np.float64 if np.issubdtype(c.values.dtype, np.floating) else np.int64
    out = np.zeros((c.shape[0], cols.shape[1]), dtype=acc_t)
    vals = c.values.astype(acc_t) - zero
    for o in range(c.shape[0]):
        s, e = int(c.row[o]), int(c.row[o + 1])
        out[o] = vals[s:e] @ cols[c.col[s:e].astype(np.int64)].astype(acc_t)
    return out
