"""Per-configuration statistics over repetitions, in the paper's units (ms, mW, mWs).

Spread is the *sample* standard deviation (ddof = 1), the usual choice for n = 8 draws from a
larger population of inferences; a configuration with one repetition has no std (NaN)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# stored column -> (summary prefix, factor to the paper's unit)
METRICS: dict[str, tuple[str, float]] = {
    "latency_s": ("latency_ms", 1e3),
    "power_w": ("power_mw", 1e3),
    "energy_j": ("energy_mws", 1e3),
    "energy_net_j": ("energy_net_mws", 1e3),
    "power_net_w": ("power_net_mw", 1e3),
    "baseline_power_w": ("baseline_power_mw", 1e3),
    "cycle_latency_s": ("cycle_latency_ms", 1e3),
}
DDOF = 1


def with_power(measurements: pd.DataFrame) -> pd.DataFrame:
    """Fill a missing mean power from energy / latency of the same repetition (same window)."""
    m = measurements.copy()
    if {"power_w", "energy_j", "latency_s"} <= set(m.columns):
        derived = m["energy_j"] / m["latency_s"]
        m["power_w"] = m["power_w"].fillna(derived)
    return m


def summarize(measurements: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Configurations left-joined with mean/std/n of each metric (n = repetitions measured)."""
    import pandas as pd

    m = with_power(measurements)
    frames = []
    for col, (prefix, factor) in METRICS.items():
        if col not in m.columns:
            continue
        g = (m[col] * factor).groupby(m["config_id"])
        frames.append(pd.DataFrame({f"{prefix}_mean": g.mean(), f"{prefix}_std": g.std(ddof=DDOF)}))
    n = m.groupby("config_id").size().rename("n")
    stats = pd.concat([n, *frames], axis=1) if frames else n.to_frame()
    out = configs.merge(stats, how="left", left_on="config_id", right_index=True)
    out["n"] = out["n"].fillna(0).astype(int)
    return out
