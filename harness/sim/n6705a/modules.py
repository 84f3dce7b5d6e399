"""Output modules the simulated N6705A can hold: ranges and digitizer limits per model.

The digitizer figures follow the instrument notes (N678xA SMU: 5.12 us for one parameter,
10.24 us for two; other modules: 20.48 us) and are marked [check] there; the simulator answers
``SENS:SWE:TINT? MIN`` from this table so the driver never hard-codes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ModuleSpec:
    model: str
    v_max: float
    i_max: float
    ovp_max: float
    tint_step_s: float  # digitizer intervals are multiples of this
    tint_min_one_s: float  # finest interval with one measured parameter
    tint_min_two_s: float  # finest interval with voltage and current
    max_points: int = 512 * 1024


_SMU: dict[str, Any] = dict(tint_step_s=5.12e-6, tint_min_one_s=5.12e-6, tint_min_two_s=10.24e-6)
_BASIC: dict[str, Any] = dict(tint_step_s=20.48e-6, tint_min_one_s=20.48e-6, tint_min_two_s=20.48e-6)

MODULES: dict[str, ModuleSpec] = {
    "N6781A": ModuleSpec("N6781A", 20.0, 3.0, 22.0, **_SMU),
    "N6782A": ModuleSpec("N6782A", 20.0, 3.0, 22.0, **_SMU),
    "N6785A": ModuleSpec("N6785A", 20.0, 8.0, 22.0, **_SMU),
    "N6786A": ModuleSpec("N6786A", 20.0, 8.0, 22.0, **_SMU),
    "N6761A": ModuleSpec("N6761A", 50.0, 1.5, 55.0, **_BASIC),
    "N6762A": ModuleSpec("N6762A", 50.0, 3.0, 55.0, **_BASIC),
    "N6731B": ModuleSpec("N6731B", 5.0, 10.0, 7.5, **_BASIC),
    "N6752A": ModuleSpec("N6752A", 50.0, 10.0, 55.0, **_BASIC),
}

TINT_MAX_S = 40000.0


def module_spec(model: str) -> ModuleSpec:
    try:
        return MODULES[model.upper()]
    except KeyError:
        raise ValueError(f"unknown N6700 module {model!r}; known: {', '.join(MODULES)}") from None


def quantise_interval(spec: ModuleSpec, requested_s: float, n_params: int) -> float:
    """Round to the module's step, then clamp to the finest interval for ``n_params``."""
    steps = max(1, round(requested_s / spec.tint_step_s))
    finest = spec.tint_min_one_s if n_params <= 1 else spec.tint_min_two_s
    return min(max(steps * spec.tint_step_s, finest), TINT_MAX_S)
