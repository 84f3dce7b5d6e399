"""Integer primitives shared by the reference executor and (bit-identically) the C runtime.

Every function works on numpy int64 arrays holding int32 values, so results equal the C code in
``firmware_templates/runtime/nnrt_fixed.h`` element by element.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
DTYPE_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767), "int32": (INT32_MIN, INT32_MAX)}


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Split ``real`` into (M0, shift) with real ~= M0 * 2**(shift - 31), M0 in [2**30, 2**31).

    TFLM's QuantizeMultiplier: frexp, then round half away from zero. A multiplier too small to be
    represented becomes (0, 0); shift is limited to [-31, 30].
    """
    if real < 0:
        raise ValueError(f"negative requantization multiplier {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    m0 = math.floor(q * (1 << 31) + 0.5)
    if m0 == (1 << 31):
        m0 //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"requantization multiplier {real} is too large")
    return int(m0), int(shift)


def srdhm(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul (gemmlowp): (a*b + nudge) / 2**31 with C's truncating
    division, nudge = 2**30 for a*b >= 0 else 1 - 2**30. Both cases equal floor((a*b + 2**30) /
    2**31), an arithmetic shift: one pass instead of four (the host reference's hottest line)."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    res = a * b
    res += 1 << 30
    res >>= 31
    if np.any(b == INT32_MIN):  # the one overflow: INT32_MIN * INT32_MIN saturates
        res = np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, res)
    return res


def rdbpot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**exponent rounded to nearest, ties away from zero (exponent >= 0)."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    # floor((x + 2**(e-1) - [x < 0]) / 2**e) for e >= 1; e == 0 leaves x as it is
    half = (np.int64(1) << e) >> 1
    res = x + half
    res -= (x < 0) & (half > 0)
    res >>= e
    return res


def mbqm(x: np.ndarray, m0: np.ndarray | int, shift: np.ndarray | int) -> np.ndarray:
    """MultiplyByQuantizedMultiplier: x * M0 * 2**(shift-31); a positive shift saturates x << shift to int32."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    xs = np.clip(x << left, INT32_MIN, INT32_MAX)
    return rdbpot(srdhm(xs, m0), right)


def pow2_shift(acc: np.ndarray, rshift: int) -> np.ndarray:
    """CMSIS-NN NN_ROUND right shift: (acc + 2**(r-1)) >> r (floor); r < 0 is a plain left shift."""
    acc = np.asarray(acc, dtype=np.int64)
    if rshift > 0:
        return (acc + (1 << (rshift - 1))) >> rshift
    return acc << (-rshift)


def round_div(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Integer division rounding to nearest, ties away from zero (TFLM average pool)."""
    total = np.asarray(total, dtype=np.int64)
    count = np.asarray(count, dtype=np.int64)
    half = count // 2
    mag = (np.abs(total) + half) // count
    return np.where(total >= 0, mag, -mag)
