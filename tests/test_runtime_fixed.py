"""nnrt_fixed.h (C) equals harness.codegen.fixedpoint (numpy) on random and edge values, ties included."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.codegen.emit import RUNTIME_DIR
from harness.codegen.fixedpoint import INT32_MAX, INT32_MIN, mbqm, pow2_shift, rdbpot, srdhm

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="host gcc missing")

DRIVER = r"""
#include <stdio.h>
#include <inttypes.h>
#include "nnrt_fixed.h"
int main(void)
{
    long long a, b, c;
    while (scanf("%lld %lld %lld", &a, &b, &c) == 3) {
        printf("%" PRId32 " %" PRId32 " %" PRId32 " %lld %" PRId32 " %" PRId32 " %" PRId32 " %" PRId32 "\n",
               nnrt_srdhm((int32_t)a, (int32_t)b), nnrt_rdbpot((int32_t)a, (int32_t)(c < 0 ? -c : c) % 32),
               nnrt_mbqm((int32_t)a, (int32_t)b, (int32_t)c), (long long)nnrt_pow2_shift(a, (int32_t)c % 16),
               b >= 0 ? nnrt_mbqm_pos((int32_t)a, (int32_t)b, (int32_t)c) : 0,
               nnrt_pow2_shift32((int32_t)a, (int32_t)c % 16),
               b >= 0 && c <= -1 && c >= -31
                   ? nnrt_mbqm_rshift((int32_t)a, (int32_t)b, (int32_t)-c, (int32_t)(1u << (-c - 1)))
                   : 0,
               b >= 0 ? nnrt_srdhm_pos32((int32_t)a, (int32_t)b) : 0);
    }
    return 0;
}
"""


def test_c_fixed_point_matches_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(99)
    n = 3000
    a = rng.integers(INT32_MIN, INT32_MAX, size=n, endpoint=True)
    a[: n // 3] = rng.integers(-(2**20), 2**20, size=n // 3)  # accumulator-sized values
    b = rng.integers(0, INT32_MAX, size=n, endpoint=True)
    c = rng.integers(-31, 12, size=n)
    edges = [INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, 2**30, -(2**30)]
    extra = np.array([(x, y, s) for x in edges for y in (INT32_MIN, 0, 1, 2**30, INT32_MAX) for s in (-31, -1, 0, 5)]
                     + [(x, INT32_MAX - d, -e) for x in (INT32_MAX, INT32_MAX - 1, INT32_MAX - 2**29, INT32_MIN)
                        for d in (0, 1, 3) for e in (1, 2, 3, 30, 31)])  # v + 2^(e-1) overflows
    a, b, c = np.concatenate([a, extra[:, 0]]), np.concatenate([b, extra[:, 1]]), np.concatenate([c, extra[:, 2]])
    src = tmp_path / "drv.c"
    src.write_text(DRIVER)
    exe = tmp_path / "drv"
    subprocess.run(["gcc", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{RUNTIME_DIR}", str(src), "-o", str(exe)],
                   check=True)
    text = "\n".join(f"{x} {y} {s}" for x, y, s in zip(a.tolist(), b.tolist(), c.tolist(), strict=True))
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
    got = np.array([[int(v) for v in ln.split()] for ln in out.splitlines()])
    assert np.array_equal(got[:, 0], srdhm(a, b))
    assert np.array_equal(got[:, 1], rdbpot(a, np.abs(c) % 32))
    assert np.array_equal(got[:, 2], mbqm(a, b, c))
    r = np.sign(c) * (np.abs(c) % 16)  # C's % keeps the sign
    want_p2 = np.array([int(pow2_shift(np.array([x]), int(s))[0]) for x, s in zip(a.tolist(), r.tolist(), strict=True)])
    assert np.array_equal(got[:, 3], want_p2)
    pos = b >= 0  # the conv kernels' fast path: multipliers are never negative
    assert np.array_equal(got[pos, 4], mbqm(a, b, c)[pos])
    assert np.array_equal(got[:, 5], np.clip(want_p2, INT32_MIN, INT32_MAX))  # 32-bit saturating variant
    rs = pos & (c <= -1) & (c >= -31)  # nnrt_mbqm_rshift: the fast DSP conv's requantization
    assert rs.sum() > 1000
    assert np.array_equal(got[rs, 6], mbqm(a, b, c)[rs])
    # nnrt_srdhm_pos32: SRDHM without a 64-bit multiply (what nnrt_mbqm_pos uses on ARMv6-M)
    assert np.array_equal(got[pos, 7], srdhm(a, b)[pos])
