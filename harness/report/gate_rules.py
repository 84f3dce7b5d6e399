"""Per-metric rules of the regression gate: which metrics gate, exact or statistical, threshold,
alpha, which test, and which direction is better.

Rules come, weakest first, from the defaults here, a ``[gate]`` table in the campaign file, a
``gate.toml`` (its own ``[gate]`` table or top level) and the command line. Deterministic
metrics (footprint, simulated cycles, on-device accuracy on fixed inputs) are compared exactly
with an absolute tolerance in their unit; noisy ones (latency, power, energy) need a relative
change beyond ``threshold`` AND a significant test at ``alpha``, so noise never fails CI."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import ConfigError

Mode = Literal["exact", "statistical"]
Test = Literal["welch", "mannwhitney"]
Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is read and shown. ``per_rep`` metrics come from the measurement rows,
    the others are one value per configuration (configurations table / footprint)."""

    name: str
    label: str
    unit: str  # unit the delta is shown in
    scale: float  # stored SI value x scale = shown value
    per_rep: bool
    mode: Mode
    direction: Direction
    gate: bool


METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    MetricInfo("latency_s", "latency", "ms", 1e3, True, "statistical", "lower", True),
    MetricInfo("power_w", "power", "mW", 1e3, True, "statistical", "lower", False),
    MetricInfo("energy_j", "energy", "mJ", 1e3, True, "statistical", "lower", True),
    MetricInfo("energy_net_j", "energy above baseline", "mJ", 1e3, True, "statistical", "lower", True),
    MetricInfo("cycles", "cycles", "cycles", 1.0, True, "exact", "lower", True),
    MetricInfo("flash_bytes", "flash", "B", 1.0, False, "exact", "lower", True),
    MetricInfo("ram_bytes", "RAM", "B", 1.0, False, "exact", "lower", True),
    MetricInfo("code_bytes", "code (.text)", "B", 1.0, False, "exact", "lower", False),
    MetricInfo("weights_bytes", "weights", "B", 1.0, False, "exact", "lower", False),
    *(MetricInfo(f"{sec}_bytes", f"section .{sec}", "B", 1.0, False, "exact", "lower", False)
      for sec in ("text", "rodata", "data", "bss")),
    MetricInfo("device_accuracy", "on-device accuracy", "pp", 100.0, False, "exact", "higher", True),
)}
ALIASES = {"latency": "latency_s", "power": "power_w", "energy": "energy_j", "energy_net": "energy_net_j",
           "energy_above_baseline": "energy_net_j", "flash": "flash_bytes", "ram": "ram_bytes",
           "code": "code_bytes", "weights": "weights_bytes", "accuracy": "device_accuracy"}


def metric_name(name: str) -> str:
    """Canonical metric name for ``name`` or an alias; ValueError listing the allowed ones."""
    key = ALIASES.get(name, name)
    if key not in METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(METRICS)} "
                         f"(aliases: {', '.join(sorted(ALIASES))})")
    return key


class MetricRule(BaseModel):
    """Rule for one metric; unset fields inherit the gate-wide value or the metric's default."""

    model_config = ConfigDict(extra="forbid")
    gate: bool | None = Field(None, description="Does a regression in this metric fail the gate?")
    mode: Mode | None = Field(None, description="exact (deterministic) or statistical (noisy)")
    threshold: float | None = Field(None, ge=0, description="statistical: relative change that counts (0.05 = 5 %)")
    tolerance: float | None = Field(None, ge=0, description="exact: absolute change allowed, in the metric's unit")
    alpha: float | None = Field(None, gt=0, lt=1, description="statistical: significance level")
    test: Test | None = Field(None, description="statistical: welch (t-test) or mannwhitney (U test)")
    direction: Direction | None = Field(None, description="which way is better")


class GateConfig(BaseModel):
    """The ``[gate]`` table (campaign file or gate.toml)."""

    model_config = ConfigDict(extra="forbid")
    baseline: str | None = Field(None, description="Stored baseline name compare uses when none is given")
    threshold: float = Field(0.05, ge=0, description="Default relative threshold of statistical metrics")
    alpha: float = Field(0.01, gt=0, lt=1, description="Default significance level")
    test: Test = "welch"
    allow_missing: bool = Field(False, description="Configurations absent on one side do not fail")
    metrics: dict[str, MetricRule] = Field(default_factory=dict, description="Per-metric rules by metric name")

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: dict[str, MetricRule]) -> dict[str, MetricRule]:
        return {metric_name(k): r for k, r in v.items()}


@dataclass(frozen=True)
class ResolvedRule:
    metric: MetricInfo
    gate: bool
    mode: Mode
    threshold: float
    tolerance: float
    alpha: float
    test: Test
    direction: Direction

    def describe(self) -> str:
        better = "lower" if self.direction == "lower" else "higher"
        if self.mode == "exact":
            tol = f"tolerance {self.tolerance:g} {self.metric.unit}" if self.tolerance else "no tolerance"
            return f"exact ({tol}; {better} is better)"
        test = "Welch's t-test" if self.test == "welch" else "Mann-Whitney U"
        return f"> {self.threshold * 100:g} % and {test} p < {self.alpha:g} ({better} is better)"


def resolve(cfg: GateConfig) -> dict[str, ResolvedRule]:
    out = {}
    for name, info in METRICS.items():
        r = cfg.metrics.get(name, MetricRule())
        out[name] = ResolvedRule(
            info,
            gate=info.gate if r.gate is None else r.gate,
            mode=r.mode or info.mode,
            threshold=cfg.threshold if r.threshold is None else r.threshold,
            tolerance=r.tolerance or 0.0,
            alpha=cfg.alpha if r.alpha is None else r.alpha,
            test=r.test or cfg.test,
            direction=r.direction or info.direction,
        )
    return out


def _table(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["gate"] if isinstance(doc.get("gate"), dict) else doc


def parse_gate(doc: dict[str, Any], source: str) -> GateConfig:
    """A GateConfig from a parsed TOML document (``[gate]`` table or top level)."""
    try:
        return GateConfig.model_validate(_table(doc))
    except (ValidationError, ValueError) as exc:
        errs = exc.errors() if isinstance(exc, ValidationError) else [{"loc": ("metrics",), "msg": str(exc)}]
        raise ConfigError(source, [f"field 'gate.{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in errs]) from None


def load_gate_file(path: Path) -> GateConfig:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["file does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_gate(doc, str(path))


def merge(base: GateConfig, top: dict[str, Any]) -> GateConfig:
    """``base`` with the fields set in ``top`` (a [gate] table) laid over it, per metric too."""
    data = base.model_dump(exclude_unset=True)
    for k, v in top.items():
        if k == "metrics":
            metrics = data.setdefault("metrics", {})
            for m, rule in v.items():
                metrics.setdefault(metric_name(m), {}).update(rule)
        else:
            data[k] = v
    return GateConfig.model_validate(data)


def parse_override(text: str) -> dict[str, Any]:
    """``--rule latency.threshold=0.1`` / ``--rule alpha=0.05`` -> a partial [gate] table."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ValueError(f"--rule {text!r}: expected KEY=VALUE, e.g. latency.threshold=0.1 or alpha=0.05")
    try:
        value: Any = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as exact / mannwhitney
    parts = key.strip().split(".")
    if len(parts) == 1:
        return {parts[0]: value}
    if len(parts) == 2:
        return {"metrics": {metric_name(parts[0]): {parts[1]: value}}}
    raise ValueError(f"--rule {text!r}: KEY is FIELD or METRIC.FIELD")
