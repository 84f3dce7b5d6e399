"""Hard ceilings no configuration file can lift, and the instrument ranges supply limits are
checked against. Why here: a board file is user input, and a typo (``abs_max_v = 50``) or
``inf`` must never reach an instrument that can deliver it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# -- supply: MCU boards on this harness --------------------------------------------------------
# The highest rail any supported board is fed on (the Nano 33 BLE's VIN takes up to 21 V); a
# board file above this is a mistake, not a board.
BOARD_MAX_V = 24.0
BOARD_MAX_A = 3.0
BOARD_MIN_V = 0.5

# -- sizes, clocks, times: physical or sensible ranges ------------------------------------------
ADDRESS_SPACE = 1 << 32  # Cortex-M: 32-bit addresses
MAX_FLASH_BYTES = 256 << 20  # the largest XIP window of a supported MCU family (QSPI, 256 MiB)
MAX_RAM_BYTES = 64 << 20
MAX_CLOCK_HZ = 1_000_000_000  # fastest Cortex-M7 parts run at 1 GHz
MIN_CLOCK_HZ = 1_000
MIN_BAUD, MAX_BAUD = 300, 12_000_000
MAX_REPETITIONS = 10_000
MAX_WARMUP = 1_000
MAX_ACCURACY_SAMPLES = 100_000
MAX_RETRIES = 10
MAX_INFERENCE_TIMEOUT_S = 3600.0
MAX_EPOCHS = 1_000
MAX_MATRIX_AXIS = 100  # models, compression settings or boards in one campaign
MAX_TIMEOUT_MS = 600_000
MAX_SETTLE_S = 60.0
MAX_SAMPLE_INTERVAL_S = 1.0
MIN_SAMPLE_INTERVAL_S = 1e-6
MAX_SEED = 2**32 - 1
MAX_TEXT = 500  # descriptions


@dataclass(frozen=True)
class OutputRange:
    """What one analyzer output can deliver (datasheet ranges)."""

    model: str
    v_max: float
    i_max: float
    ovp_max: float | None  # None: the instrument has no programmable OVP (the harness enforces ovp_v)


# Keysight N6700-family modules that fit the N6705 mainframe (datasheet output ratings).
N6705_MODULES: dict[str, OutputRange] = {
    r.model: r
    for r in (
        OutputRange("N6781A", 20.0, 3.0, 22.0),
        OutputRange("N6782A", 20.0, 3.0, 22.0),
        OutputRange("N6784A", 20.0, 3.0, 22.0),
        OutputRange("N6785A", 20.0, 8.0, 22.0),
        OutputRange("N6786A", 20.0, 8.0, 22.0),
        OutputRange("N6761A", 50.0, 1.5, 55.0),
        OutputRange("N6762A", 50.0, 3.0, 55.0),
        OutputRange("N6731B", 5.0, 10.0, 7.5),
        OutputRange("N6752A", 50.0, 10.0, 55.0),
        OutputRange("N6754A", 60.0, 20.0, 66.0),
    )
}

# Per analyzer kind: the widest range any of its outputs has (used when the module is not given).
INSTRUMENT_RANGE: dict[str, OutputRange] = {
    "n6705a": OutputRange("N6705 (any module)", max(r.v_max for r in N6705_MODULES.values()),
                          max(r.i_max for r in N6705_MODULES.values()),
                          max(r.ovp_max for r in N6705_MODULES.values() if r.ovp_max is not None)),
    # Nordic PPK2 source-meter mode: 0.8-5.0 V, up to 1 A (PPK2 user guide).
    "ppk2": OutputRange("PPK2 source meter", 5.0, 1.0, None),
    # Joulescope JS110/JS220 sit in line with the board's own supply: +-15 V, 10 A continuous (datasheets).
    "joulescope": OutputRange("Joulescope (in line)", 15.0, 10.0, None),
}

# -- names that become file or folder names ----------------------------------------------------
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SAFE_NAME_HELP = "1-64 characters: letters, digits, '_', '-', '.', starting with a letter or digit (no '/', no '..')"


def check_safe_name(value: str) -> str:
    """A name used as a path component: no separators, no traversal, no hidden or odd files."""
    if not SAFE_NAME.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a safe name; allowed: {SAFE_NAME_HELP}")
    return value


def inside(root: Path, *parts: str) -> Path:
    """``root / parts`` resolved, refusing anything that lands outside ``root`` (a symlink or a
    name that slipped past validation)."""
    base = root.resolve()
    target = base.joinpath(*parts).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{'/'.join(parts)!r} resolves to {target}, outside {base}")
    return target
