"""Rig description (`instruments/<rig>.toml`): which boards sit on the bench, how they are
reached, which power analyzer supplies them and which instruments time the GPIO pulse."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from harness.config import endpoints as E
from harness.config import limits as L
from harness.config.loader import find_config, load_model

if TYPE_CHECKING:
    from harness.config.board import BoardConfig

ModuleName = Literal[tuple(L.N6705_MODULES)]  # type: ignore[valid-type]


def _registered(group: str, value: str, extra: tuple[str, ...] = ()) -> str:
    """A driver name must be installed (entry points, harness.instruments.registry)."""
    from harness.instruments import registry

    allowed = (*extra, *registry.names(group))
    if value not in allowed:
        raise ValueError(f"{value!r} is not an installed {registry.GROUPS[group]} driver; allowed: {', '.join(allowed)}")
    return value


SIMULATED_STAND_IN = "sim"  # the rig-file value that asks for a part's simulated counterpart


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DutSettings(_Strict):
    board: str = Field(description="Board name (boards/<name>.toml)")
    probe: str | None = Field(None, pattern=E.PROBE_ID.pattern,
                              description="Debug probe unique id; 'sim:<board>' for a simulated board")
    serial: str = Field(
        "sim", description="pyserial port or URL (/dev/ttyACM0, socket://127.0.0.1:4000); 'sim' = the simulated UART"
    )
    baudrate: int | None = Field(None, ge=L.MIN_BAUD, le=L.MAX_BAUD, description="Overrides the board's UART baud rate")
    analyzer_channel: int = Field(1, ge=1, le=4, description="Power analyzer output powering this board (one board per channel)")
    analyzer_module: ModuleName | None = Field(  # type: ignore[valid-type]
        None, description="Module model in that channel (e.g. N6781A): its output range bounds the board's supply limits")
    trigger_pin: int = Field(1, ge=1, le=7, description="Analyzer digital-port pin wired to the board's GPIO")

    @field_validator("board")
    @classmethod
    def _board(cls, v: str) -> str:
        return L.check_safe_name(v)

    @field_validator("serial")
    @classmethod
    def _serial(cls, v: str) -> str:
        return E.check_serial(v)


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
    timeout_ms: int = Field(10000, ge=100, le=L.MAX_TIMEOUT_MS)
    sample_interval_s: float = Field(20.48e-6, ge=L.MIN_SAMPLE_INTERVAL_S, le=L.MAX_SAMPLE_INTERVAL_S,
                                     description="Requested interval; the analyzer quantises it")
    settle_s: float = Field(0.2, ge=0, le=L.MAX_SETTLE_S, description="Wait after switching the output on")

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from harness.instruments.registry import POWER_MONITORS

        return _registered(POWER_MONITORS, v, ("none",))

    @field_validator("resource")
    @classmethod
    def _address_for_driver(cls, v: str, info: ValidationInfo) -> str:
        """The resource's syntax is the driver's to judge (VISA string, serial port, device path)."""
        from harness.instruments.registry import check_monitor_address

        kind = info.data.get("kind")
        if kind and kind != "none" and v != SIMULATED_STAND_IN:
            check_monitor_address(kind, v)
        return v

    @property
    def started_by_station(self) -> bool:
        """The monitor is a simulated stand-in the station itself starts (resource 'sim'): it
        lives and dies with the station, so nothing outside it has an output to switch off."""
        return self.kind != "none" and self.resource == SIMULATED_STAND_IN


class TimingSettings(_Strict):
    kind: str = Field(description="Timing source driver: pa-trigger, digital-input, cycle-counter, scope, "
                                  "logic-analyzer, or any installed harness.timing_sources entry point")
    resource: str | None = Field(None, max_length=256, description="VISA resource (scope) or sigrok driver (logic analyzer)")
    dialect: Literal["keysight", "rigol", "tektronix"] | None = None
    channel: str | None = Field(None, pattern=r"^[A-Za-z0-9_:]{1,32}$")

    @model_validator(mode="after")
    def _resource_syntax(self) -> TimingSettings:
        if self.resource is None:
            return self
        if self.kind == "scope":
            try:
                E.check_visa_resource(self.resource)
            except ValueError as exc:
                raise ValueError(f"resource: {exc}") from None
        elif self.kind == "logic-analyzer" and not re.match(r"^[A-Za-z0-9_-]+(:[A-Za-z0-9_.=/:,-]+)?$", self.resource):
            raise ValueError(f"resource {self.resource!r} is not a sigrok driver spec (e.g. fx2lafw or "
                             "fx2lafw:conn=1.5)")
        return self

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from harness.instruments.registry import TIMING_SOURCES

        return _registered(TIMING_SOURCES, v)


class RigConfig(_Strict):
    name: str
    description: str = Field("", max_length=L.MAX_TEXT)
    duts: list[DutSettings] = Field(min_length=1, max_length=L.MAX_MATRIX_AXIS)
    power_analyzer: PowerAnalyzerSettings = PowerAnalyzerSettings()
    timing: list[TimingSettings] = Field(
        default_factory=lambda: [TimingSettings(kind="pa-trigger"), TimingSettings(kind="cycle-counter")],
        min_length=1,
    )
    cross_check_tolerance: float = Field(0.02, gt=0, lt=1, description="Relative disagreement allowed between timing sources")
    mbed_os: str | None = Field(None, description="Mbed CE checkout the real boards' firmware is built against "
                                "(used when neither --mbed-os nor $MBED_OS_PATH is given)")
    source_file: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _checks(self) -> RigConfig:
        boards = [d.board for d in self.duts]
        if len(set(boards)) != len(boards):
            raise ValueError(f"duts: board listed twice in {boards}")
        if self.power_analyzer.kind != "none":
            checks = [("analyzer_channel", "analyzer channel")]
            if any(t.kind == "pa-trigger" for t in self.timing):
                checks.append(("trigger_pin", "trigger pin"))
            for attr, what in checks:
                seen: dict[int, str] = {}
                for i, d in enumerate(self.duts):
                    other = seen.setdefault(getattr(d, attr), d.board)
                    if other != d.board:
                        raise ValueError(f"duts.{i}.{attr}: {what} {getattr(d, attr)} already serves board "
                                         f"{other!r}; one board per {what}")
        for t in self.timing:
            if t.kind == "scope" and (t.resource is None or t.dialect is None):
                raise ValueError("timing kind 'scope' needs 'resource' and 'dialect' (keysight, rigol, tektronix)")
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return L.check_safe_name(v)

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
                board = load_board(dut.board)
            except ConfigError as exc:
                problems.append(f"field 'duts.{i}.board': {exc}")
                continue
            problems += supply_problems(rig, i, board)
        if problems:
            raise ConfigError(str(path), problems)
    return rig.model_copy(update={"source_file": str(path)})


def output_range(rig: RigConfig, dut: DutSettings) -> L.OutputRange | None:
    """What the analyzer output powering ``dut`` can deliver (None: no analyzer)."""
    if rig.power_analyzer.kind == "none":
        return None
    if dut.analyzer_module is not None:
        return L.N6705_MODULES[dut.analyzer_module]
    # A third-party driver without a table entry is bounded by the board's own ceiling only.
    return L.INSTRUMENT_RANGE.get(rig.power_analyzer.kind)


def supply_problems(rig: RigConfig, index: int, board: BoardConfig) -> list[str]:
    """The board's supply limits against the output that powers it: a limit the output cannot
    honour (OVP above its range, say) would be clamped or refused by the instrument."""
    dut = rig.duts[index]
    rng = output_range(rig, dut)
    if rng is None:
        return []
    s, out = board.supply, []
    where = f"field 'duts.{index}' (board {board.name!r}, channel {dut.analyzer_channel}, {rng.model})"
    if rng.ovp_max is not None and s.abs_max_v > rng.v_max:  # its OVP could not be set to the board's
        out.append(f"{where}: supply abs_max_v={s.abs_max_v} V is beyond the output's {rng.v_max} V range")
    if s.nominal_v > rng.v_max:
        out.append(f"{where}: supply nominal_v={s.nominal_v} V is beyond the output's {rng.v_max} V range")
    if rng.ovp_max is not None and s.ovp_v > rng.ovp_max:
        out.append(f"{where}: supply ovp_v={s.ovp_v} V is beyond the output's OVP range {rng.ovp_max} V")
    if s.current_limit_a > rng.i_max:
        out.append(f"{where}: supply current_limit_a={s.current_limit_a} A is beyond the output's {rng.i_max} A")
    return out


def port_warnings(rig: RigConfig) -> list[str]:
    """Serial ports that are well-formed but absent right now: `validate` warns, `rig doctor`
    fails on them."""
    return [f"duts.{i}.serial: {why}" for i, d in enumerate(rig.duts) if (why := E.port_presence(d.serial))]
