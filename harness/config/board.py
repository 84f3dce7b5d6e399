"""Board description (`boards/<name>.toml`): what the harness must know to build for, flash,
power and simulate one board."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.config import limits as L
from harness.config.cflags import check_cflags
from harness.config.loader import find_config, load_model

Core = Literal["cortex-m0plus", "cortex-m4", "cortex-m4f", "cortex-m7"]
CYCLE_MODEL_OF_CORE = {"cortex-m0plus": "cortex-m0plus", "cortex-m4": "cortex-m4", "cortex-m4f": "cortex-m4",
                       "cortex-m7": "cortex-m7"}
PIN = r"^[A-Za-z0-9_]{1,32}$"
TARGET = r"^[A-Za-z0-9_.-]{1,64}$"


class _Strict(BaseModel):
    # inf/nan are refused everywhere: a limit of inf is no limit
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class MemoryMap(_Strict):
    flash_base: int = Field(ge=0, lt=L.ADDRESS_SPACE, description="Start of on-chip (or XIP) flash")
    flash_size: int = Field(gt=0, le=L.MAX_FLASH_BYTES, description="Flash bytes usable by the benchmark image")
    ram_base: int = Field(ge=0, lt=L.ADDRESS_SPACE)
    ram_size: int = Field(gt=0, le=L.MAX_RAM_BYTES)
    app_offset: int = Field(0, ge=0, description="Offset of the application inside flash (bootloader before it)")
    stack_size: int = Field(8192, ge=256, description="Stack reserved by the bare-metal linker script")

    @model_validator(mode="after")
    def _layout(self) -> MemoryMap:
        flash_end, ram_end = self.flash_base + self.flash_size, self.ram_base + self.ram_size
        if flash_end > L.ADDRESS_SPACE:
            raise ValueError(f"flash_base + flash_size = {flash_end:#x} is beyond the 32-bit address space")
        if ram_end > L.ADDRESS_SPACE:
            raise ValueError(f"ram_base + ram_size = {ram_end:#x} is beyond the 32-bit address space")
        if self.flash_base < ram_end and self.ram_base < flash_end:
            raise ValueError(f"flash {self.flash_base:#x}-{flash_end - 1:#x} and RAM {self.ram_base:#x}-{ram_end - 1:#x} "
                             "overlap; the regions must be disjoint")
        if self.app_offset >= self.flash_size:
            raise ValueError(f"app_offset={self.app_offset:#x} is at or past the end of flash (flash_size="
                             f"{self.flash_size:#x}); it must leave room for the application")
        if self.app_offset % 4:
            raise ValueError(f"app_offset={self.app_offset:#x} is not 4-byte aligned (the vector table must be)")
        if self.stack_size > self.ram_size // 2:
            raise ValueError(f"stack_size={self.stack_size} takes more than half of ram_size={self.ram_size}")
        return self


class FlashSettings(_Strict):
    pyocd_target: str = Field(pattern=TARGET, description="pyOCD target type, e.g. m487jidae")
    mbed_target: str | None = Field(None, pattern=TARGET, description="Mbed OS / Mbed CE target name")
    method: Literal["pyocd", "msd", "sim"] = "pyocd"
    base_address: int | None = Field(None, ge=0, lt=L.ADDRESS_SPACE,
                                     description="Where a .bin is programmed (default flash_base + app_offset)")


class GpioSettings(_Strict):
    benchmark_pin: str = Field(pattern=PIN, description="Pin driven high during each inference, e.g. PB_2, P1_11, GP15")
    active_high: bool = True


class UartSettings(_Strict):
    baudrate: int = Field(115200, ge=L.MIN_BAUD, le=L.MAX_BAUD)
    tx_pin: str | None = Field(None, pattern=PIN)
    rx_pin: str | None = Field(None, pattern=PIN)


class SupplySettings(_Strict):
    """Safety limits of the supplied rail. Finite and below hard ceilings (harness/config/limits.py)
    whatever the file says; the rig adds the analyzer output's own range on top."""

    nominal_v: float = Field(ge=L.BOARD_MIN_V, le=L.BOARD_MAX_V, description="Voltage the power analyzer supplies")
    abs_max_v: float = Field(gt=0, le=L.BOARD_MAX_V, description="Absolute maximum of the supplied rail; never exceeded")
    ovp_v: float = Field(gt=0, le=L.BOARD_MAX_V, description="Over-voltage protection level set on the analyzer")
    current_limit_a: float = Field(ge=1e-4, le=L.BOARD_MAX_A, description="Current limit set on the analyzer")

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
    idle_current_a: float = Field(gt=0, le=L.BOARD_MAX_A, description="Supply current while the core sleeps (WFI)")
    active_current_a: float = Field(gt=0, le=L.BOARD_MAX_A, description="Supply current while the core executes")
    mem_current_a: float = Field(
        0.0, ge=0, le=L.BOARD_MAX_A,
        description="Extra current per unit fraction of load/store instructions (instruction-mix term)",
    )
    current_noise_a: float = Field(0.0, ge=0, le=0.1, description="RMS noise added by the simulated analyzer")
    cache: SimCache | None = Field(None, description="Flash cache; with it, instruction fetches pay misses only")
    rom_float: bool = Field(False, description="Emulate the RP2040 boot-ROM soft-float table (harness/sim/romfloat.py)")
    power: SimPower = SimPower()


class BuildSettings(_Strict):
    template: Literal["bare-metal", "mbed"] = "bare-metal"
    extra_cflags: list[str] = Field(default_factory=list, description="Extra gcc flags (allow-list: harness/config/cflags.py)")

    @field_validator("extra_cflags")
    @classmethod
    def _allowed(cls, v: list[str]) -> list[str]:
        return check_cflags(v)


class BoardConfig(_Strict):
    name: str = Field(description="Board name; becomes folder names (" + L.SAFE_NAME_HELP + ")")
    description: str = Field("", max_length=L.MAX_TEXT)
    mcu: str = Field(pattern=TARGET)
    core: Core
    clock_hz: int = Field(ge=L.MIN_CLOCK_HZ, le=L.MAX_CLOCK_HZ)
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

    @field_validator("name", "twin_of")
    @classmethod
    def _safe(cls, v: str | None) -> str | None:
        return None if v is None else L.check_safe_name(v)

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
    def _consistent(self) -> BoardConfig:
        if self.flash.method == "sim" and self.sim is None:
            raise ValueError("flash.method = 'sim' needs a [sim] section")
        mem = self.memory
        if not mem.flash_base <= self.program_base < mem.flash_base + mem.flash_size:
            raise ValueError(f"flash.base_address={self.program_base:#x} is outside flash "
                             f"{mem.flash_base:#x}-{mem.flash_base + mem.flash_size - 1:#x}")
        if self.sim is not None:
            want = CYCLE_MODEL_OF_CORE[self.core]
            if self.sim.cycle_model != want:
                raise ValueError(f"sim.cycle_model={self.sim.cycle_model!r} does not match core={self.core!r} "
                                 f"(expected {want!r})")
            if max(self.sim.idle_current_a, self.sim.active_current_a) > self.supply.current_limit_a:
                raise ValueError(f"sim currents exceed supply.current_limit_a={self.supply.current_limit_a} A: "
                                 "the analyzer would limit the simulated board")
        return self


def load_board(name_or_path: str | Path) -> BoardConfig:
    path = find_config("boards", name_or_path)
    board = load_model(BoardConfig, path)
    return board.model_copy(update={"source_file": str(path)})


def list_boards() -> list[str]:
    from harness.config.loader import repo_root

    return sorted(p.stem for p in (repo_root() / "boards").glob("*.toml"))
