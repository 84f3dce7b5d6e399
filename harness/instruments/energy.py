"""Energy and power of one inference from a sampled V and I record and a GPIO window.

Each sample is the mean over its interval (integrating ADC), so the exact integral over whole
samples is ``sum(P_k) * TINT``. At the window edges only part of a sample lies inside. Two
ways to split such a sample:

* ``edge_aware=True`` (default): the part *outside* the window is taken to be at the baseline
  (idle) power, the rest of the sample's energy is inside. Exact when the board is idle outside
  the inference, which is what the GPIO window means.
* ``edge_aware=False``: the sample's energy is shared in proportion to time (linear
  interpolation of the cumulative energy). Neutral, but off by up to a fraction of
  ``(P_active - P_idle) * TINT`` per edge.

Baseline power is the mean over whole samples outside the window (pre-trigger and after the
end edge, one sample kept clear of each edge): the board's idle draw between inferences."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from harness.instruments.waveform import Waveform

UNITS = {"latency_s": "s", "energy_j": "J", "power_w": "W", "baseline_power_w": "W", "energy_net_j": "J",
         "power_net_w": "W", "sample_interval_s": "s", "cross_check_deviation": "1"}


@dataclass(frozen=True)
class InferenceMeasurement:
    """One measured inference. Units are SI and part of every field name."""

    index: int
    latency_s: float
    energy_j: float  # gross: integral of V*I over the GPIO window
    power_w: float  # gross mean power over the window
    baseline_power_w: float  # idle power between inferences
    energy_net_j: float  # energy_j - baseline_power_w * latency_s
    power_net_w: float
    sample_interval_s: float  # digitizer interval read back from the instrument
    timing_source: str  # the source whose window/latency is reported
    latency_by_source_s: dict[str, float] = field(default_factory=dict)
    cross_check_deviation: float | None = None  # max |d - d_primary| / d_primary over other sources
    cross_check_ok: bool | None = None
    voltage_measured: bool = True
    window_start_s: float = 0.0  # on the record's time axis (relative to the trigger sample)
    cycles: int | None = None

    def to_dict(self) -> dict[str, object]:
        """Plain values plus the unit of every numeric field."""
        return {**asdict(self), "units": dict(UNITS)}


def window_energy(wf: Waveform, t0: float, t1: float, outside_power_w: float | None) -> float:
    """Integral of V*I over [t0, t1] (see module docstring for the edge samples)."""
    if t1 <= t0:
        return 0.0
    p = wf.power_w
    tint = wf.interval_s
    edges = wf.edges_s
    if t0 < edges[0] - 1e-15 or t1 > edges[-1] + 1e-15:
        raise ValueError(f"window [{t0}, {t1}] s is outside the record [{edges[0]}, {edges[-1]}] s")
    k0, k1 = wf.index_of(t0), wf.index_of(t1 - 1e-15)
    if k0 == k1:
        return float(p[k0]) * (t1 - t0)
    inside0 = edges[k0 + 1] - t0
    inside1 = t1 - edges[k1]
    full = float(p[k0 + 1 : k1].sum()) * tint
    if outside_power_w is None:
        return full + float(p[k0]) * inside0 + float(p[k1]) * inside1
    e0 = float(p[k0]) * tint - outside_power_w * (tint - inside0)
    e1 = float(p[k1]) * tint - outside_power_w * (tint - inside1)
    return full + e0 + e1


def baseline_power(wf: Waveform, t0: float, t1: float, guard_samples: int = 1) -> float:
    """Mean power over whole samples clear of the window [t0, t1] by ``guard_samples``."""
    p = wf.power_w
    k0, k1 = wf.index_of(t0), wf.index_of(t1)
    idle = np.concatenate([p[: max(0, k0 - guard_samples)], p[k1 + 1 + guard_samples :]])
    if len(idle) == 0:
        return float("nan")
    return float(np.median(idle)) if len(idle) < 8 else float(np.mean(idle))


def measure_window(wf: Waveform, t0: float, t1: float, *, index: int, timing_source: str,
                   edge_aware: bool = True, **extra: object) -> InferenceMeasurement:
    """Gross and baseline-subtracted energy and power of the window [t0, t1]."""
    base = baseline_power(wf, t0, t1)
    outside = base if edge_aware and np.isfinite(base) else None
    energy = float(window_energy(wf, t0, t1, outside))
    latency = float(t1 - t0)
    net = energy - base * latency if np.isfinite(base) else float("nan")
    return InferenceMeasurement(
        index=index, latency_s=latency, energy_j=energy, power_w=energy / latency if latency > 0 else float("nan"),
        baseline_power_w=base, energy_net_j=net, power_net_w=net / latency if latency > 0 else float("nan"),
        sample_interval_s=wf.interval_s, timing_source=timing_source, voltage_measured=wf.voltage_measured,
        window_start_s=float(t0), **extra,  # type: ignore[arg-type]
    )


def summarize(results: list[InferenceMeasurement]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (n-1) of latency, power and energy, as in seed 002."""
    out: dict[str, tuple[float, float]] = {}
    for name in ("latency_s", "power_w", "energy_j", "baseline_power_w", "energy_net_j", "power_net_w"):
        values = np.array([getattr(r, name) for r in results], dtype=float)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[name] = (float(values.mean()), std)
    return out
