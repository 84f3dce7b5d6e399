"""Number formatting for tables: "mean ± std" with enough decimals to show the small values of
a simulated Cortex-M0+ run and the paper's two decimals for everything from 10 up."""

from __future__ import annotations

import math

PM = "±"
NOT_FIT = "-"
FAILED = "failed"
MISSING = "n/a"


def decimals(x: float) -> int:
    """2 decimals for |x| >= 1, more below so that three significant digits remain (max 6)."""
    if not math.isfinite(x) or x == 0 or abs(x) >= 1:
        return 2
    return min(6, 2 - math.floor(math.log10(abs(x))))


def num(x: float | None, digits: int | None = None) -> str:
    if x is None or not math.isfinite(x):
        return MISSING
    d = decimals(x) if digits is None else digits
    return f"{x:.{d}f}"


def mean_std(mean: float | None, std: float | None) -> str:
    """'44.15 ± 0.03'; the std gets the mean's decimals; a single repetition shows no std."""
    if mean is None or not math.isfinite(mean):
        return MISSING
    d = decimals(mean)
    if std is None or not math.isfinite(std):
        return f"{mean:.{d}f}"
    return f"{mean:.{d}f} {PM} {std:.{d}f}"


def pct(x: float | None, digits: int = 2, signed: bool = False) -> str:
    """A fraction as percent: 0.9918 -> '99.18%'."""
    if x is None or not math.isfinite(x):
        return MISSING
    return f"{x * 100:+.{digits}f}%" if signed else f"{x * 100:.{digits}f}%"


def kib(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return MISSING
    return f"{n / 1024:.1f}"
