"""Rig description (`instruments/<rig>.toml`): which boards sit on the bench, how they are
reached, which power analyzer supplies them and which instruments time the GPIO pulse."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.config.loader import find_config, load_model


def _registered(group: str, value: str, extra: tuple[str, ...] = ()) -> str:
    """A driver name must be installed (entry points, harness.instruments.registry)."""
    from harness.instruments import registry

    allowed = (*extra, *registry.names(group))
    if value not in allowed:
        raise ValueError(f"{value!r} is not an installed {registry.GROUPS[group]} driver; allowed: {', '.join(allowed)}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DutSettings(_Strict):
    board: str = Field(description="Board name (boards/<name>.toml)")
    probe: str | None = Field(None, description="Debug probe unique id; 'sim:<board>' for a simulated board")
    serial: str = Field(
        "sim", description="pyserial port or URL (/dev/ttyACM0, socket://127.0.0.1:4000); 'sim' = the simulated UART"
    )
    baudrate: int | None = Field(None, gt=0, description="Overrides the board's UART baud rate")
    analyzer_channel: int = Field(1, ge=1, le=4, description="Power analyzer output powering this board")
    trigger_pin: int = Field(1, ge=1, le=7, description="Analyzer digital-port pin wired to the board's GPIO")


class PowerAnalyzerSettings(_Strict):
    kind: str = Field("n6705a", description="Power monitor driver (n6705a, ppk2, joulescope, or any installed "
                                            "harness.power_monitors entry point); 'none' = a latency-only rig")
    resource: str = Field(
        "sim", description="Address of the monitor: VISA resource (n6705a), serial port (ppk2), device path "
                           "(joulescope, e.g. u/js220/000415); 'sim' = its simulated counterpart"
    )
    options: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Driver-specific settings, e.g. ppk2 mode = 'source' | 'ampere'")
    backend: Literal["@py", "@ivi", "@sim"] = "@py"
    timeout_ms: int = Field(10000, gt=0)
    sample_interval_s: float = Field(20.48e-6, gt=0, description="Requested interval; the analyzer quantises it")
    settle_s: float = Field(0.2, ge=0, description="Wait after switching the output on")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from harness.instruments.registry import POWER_MONITORS

        return _registered(POWER_MONITORS, v, ("none",))

    @model_validator(mode="after")
    def _address_for_driver(self) -> PowerAnalyzerSettings:
        """The resource's syntax is the driver's to judge (VISA string, serial port, device path)."""
        from harness.instruments.registry import check_monitor_address

        if self.kind != "none" and self.resource != "sim":
            try:
                check_monitor_address(self.kind, self.resource)
            except ValueError as exc:
                raise ValueError(f"resource: {exc}") from None
        return self


class TimingSettings(_Strict):
    kind: str = Field(description="Timing source driver: pa-trigger, digital-input, cycle-counter, scope, "
                                  "logic-analyzer, or any installed harness.timing_sources entry point")
    resource: str | None = Field(None, description="VISA resource (scope) or sigrok driver (logic analyzer)")
    dialect: Literal["keysight", "rigol", "tektronix"] | None = None
    channel: str | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from harness.instruments.registry import TIMING_SOURCES

        return _registered(TIMING_SOURCES, v)


class RigConfig(_Strict):
    name: str
    description: str = ""
    duts: list[DutSettings] = Field(min_length=1)
    power_analyzer: PowerAnalyzerSettings = PowerAnalyzerSettings()
    timing: list[TimingSettings] = Field(
        default_factory=lambda: [TimingSettings(kind="pa-trigger"), TimingSettings(kind="cycle-counter")],
        min_length=1,
    )
    cross_check_tolerance: float = Field(0.02, gt=0, lt=1, description="Relative disagreement allowed between timing sources")
    source_file: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _checks(self) -> RigConfig:
        boards = [d.board for d in self.duts]
        if len(set(boards)) != len(boards):
            raise ValueError(f"duts: board listed twice in {boards}")
        for t in self.timing:
            if t.kind == "scope" and (t.resource is None or t.dialect is None):
                raise ValueError("timing kind 'scope' needs 'resource' and 'dialect' (keysight, rigol, tektronix)")
        return self

    def dut_for(self, board: str) -> DutSettings | None:
        return next((d for d in self.duts if d.board == board), None)


def load_rig(name_or_path: str | Path, check_boards: bool = True) -> RigConfig:
    from harness.config.board import load_board
    from harness.errors import ConfigError

    path = find_config("instruments", name_or_path)
    rig = load_model(RigConfig, path)
    if check_boards:
        problems = []
        for i, dut in enumerate(rig.duts):
            try:
                load_board(dut.board)
            except ConfigError as exc:
                problems.append(f"field 'duts.{i}.board': {exc}")
        if problems:
            raise ConfigError(str(path), problems)
    return rig.model_copy(update={"source_file": str(path)})
