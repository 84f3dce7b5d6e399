"""Board description (`boards/<name>.toml`): what the harness must know to build for, flash,
power and simulate one board."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.config.loader import find_config, load_model

Core = Literal["cortex-m0plus", "cortex-m4", "cortex-m4f", "cortex-m7"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemoryMap(_Strict):
    flash_base: int = Field(ge=0, description="Start of on-chip (or XIP) flash")
    flash_size: int = Field(gt=0, description="Flash bytes usable by the benchmark image")
    ram_base: int = Field(ge=0)
    ram_size: int = Field(gt=0)
    app_offset: int = Field(0, ge=0, description="Offset of the application inside flash (bootloader before it)")
    stack_size: int = Field(8192, gt=0, description="Stack reserved by the bare-metal linker script")


class FlashSettings(_Strict):
    pyocd_target: str = Field(description="pyOCD target type, e.g. m487jidae")
    mbed_target: str | None = Field(None, description="Mbed OS / Mbed CE target name")
    method: Literal["pyocd", "msd", "sim"] = "pyocd"
    base_address: int | None = Field(None, ge=0, description="Where a .bin is programmed (default flash_base + app_offset)")


class GpioSettings(_Strict):
    benchmark_pin: str = Field(description="Pin driven high during each inference, e.g. PB_2, P1_11, GP15")
    active_high: bool = True


class UartSettings(_Strict):
    baudrate: int = Field(115200, gt=0)
    tx_pin: str | None = None
    rx_pin: str | None = None


class SupplySettings(_Strict):
    nominal_v: float = Field(gt=0, description="Voltage the power analyzer supplies")
    abs_max_v: float = Field(gt=0, description="Absolute maximum of the supplied rail; never exceeded")
    ovp_v: float = Field(gt=0, description="Over-voltage protection level set on the analyzer")
    current_limit_a: float = Field(gt=0, le=3.0, description="Current limit set on the analyzer")

    @model_validator(mode="after")
    def _within_limits(self) -> SupplySettings:
        if self.nominal_v > self.abs_max_v:
            raise ValueError(
                f"nominal_v={self.nominal_v} V is above abs_max_v={self.abs_max_v} V; "
                "a supply voltage must not exceed the board's absolute maximum"
            )
        if self.ovp_v > self.abs_max_v:
            raise ValueError(f"ovp_v={self.ovp_v} V is above abs_max_v={self.abs_max_v} V")
        if self.ovp_v < self.nominal_v:
            raise ValueError(f"ovp_v={self.ovp_v} V is below nominal_v={self.nominal_v} V (output would trip)")
        return self


class SimCache(_Strict):
    """Cache / flash accelerator in front of the flash (harness/sim/memmodel.py, docs/sim-accuracy.md)."""

    size_bytes: int = Field(gt=0, description="Capacity")
    ways: int = Field(1, ge=1, le=16, description="Associativity (LRU replacement)")
    line_bytes: int = Field(gt=0, description="Line size; one miss fills one line from flash")
    miss_cycles: int = Field(ge=0, description="Core stall cycles per line fill")
    data: bool = Field(False, description="Data reads from flash go through it too (else they pay flash_wait_states)")


class SimPower(_Strict):
    """Extra supply current per unit fraction of executed instructions of a class (fitted; see
    docs/sim-accuracy.md). The base term is SimSettings.active_current_a, loads/stores are
    SimSettings.mem_current_a, sleep is SimSettings.idle_current_a."""

    fpu_a: float = Field(0.0, description="FPU instructions")
    mul_a: float = Field(0.0, description="Multiply / DSP MAC instructions")
    flash_read_a: float = Field(0.0, description="Data reads from flash (per instruction fraction)")


class SimSettings(_Strict):
    """Parameters of the simulated twin; estimates, not board measurements."""

    cycle_model: Literal["cortex-m0plus", "cortex-m4", "cortex-m7"]
    flash_wait_states: int = Field(0, ge=0, le=15)
    idle_current_a: float = Field(gt=0, description="Supply current while the core sleeps (WFI)")
    active_current_a: float = Field(gt=0, description="Supply current while the core executes")
    mem_current_a: float = Field(
        0.0, ge=0, description="Extra current per unit fraction of load/store instructions (instruction-mix term)"
    )
    current_noise_a: float = Field(0.0, ge=0, description="RMS noise added by the simulated analyzer")
    cache: SimCache | None = Field(None, description="Flash cache; with it, instruction fetches pay misses only")
    rom_float: bool = Field(False, description="Emulate the RP2040 boot-ROM soft-float table (harness/sim/romfloat.py)")
    power: SimPower = SimPower()


class BuildSettings(_Strict):
    template: Literal["bare-metal", "mbed"] = "bare-metal"
    extra_cflags: list[str] = Field(default_factory=list)


class BoardConfig(_Strict):
    name: str
    description: str = ""
    mcu: str
    core: Core
    clock_hz: int = Field(gt=0)
    has_dwt: bool = Field(True, description="DWT CYCCNT present (absent on Cortex-M0+: SysTick is used)")
    twin_of: str | None = Field(None, description="For simulated boards: the real board this one mimics")
    memory: MemoryMap
    flash: FlashSettings
    gpio: GpioSettings
    uart: UartSettings = UartSettings()
    supply: SupplySettings
    build: BuildSettings = BuildSettings()
    sim: SimSettings | None = None
    source_file: str | None = Field(None, exclude=True)

    @field_validator("has_dwt")
    @classmethod
    def _dwt(cls, v: bool, info) -> bool:
        if v and info.data.get("core") == "cortex-m0plus":
            raise ValueError("Cortex-M0+ has no DWT cycle counter; set has_dwt = false")
        return v

    @property
    def simulated(self) -> bool:
        return self.flash.method == "sim"

    @property
    def has_fpu(self) -> bool:
        return self.core in ("cortex-m4f", "cortex-m7")

    @property
    def program_base(self) -> int:
        if self.flash.base_address is not None:
            return self.flash.base_address
        return self.memory.flash_base + self.memory.app_offset

    @model_validator(mode="after")
    def _sim_needs_model(self) -> BoardConfig:
        if self.flash.method == "sim" and self.sim is None:
            raise ValueError("flash.method = 'sim' needs a [sim] section")
        return self


def load_board(name_or_path: str | Path) -> BoardConfig:
    path = find_config("boards", name_or_path)
    board = load_model(BoardConfig, path)
    return board.model_copy(update={"source_file": str(path)})


def list_boards() -> list[str]:
    from harness.config.loader import repo_root

    return sorted(p.stem for p in (repo_root() / "boards").glob("*.toml"))
