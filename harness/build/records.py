"""What the build stage hands on: the footprint of an image (footprint.json), the code
generator's figures for the model, and the build record (build.json). Reports, baselines and the
gate read these files from earlier runs, so the keys stay as they were written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field

from harness.stage_record import Record, dumps, read_json, validate_record


class FlashUse(Record):
    """Flash bytes by kind; ``model_code``/``model_const`` are informational subsets of
    ``code``/``rodata_other``."""

    vectors: int
    code: int
    weights: int
    rodata_other: int
    data_init: int
    total: int
    available: int
    used_pct: float
    model_code: int
    model_const: int


class RamUse(Record):
    """RAM bytes by kind; ``heap`` (what Mbed's scripts stretch over free RAM) is not counted."""

    data: int
    bss: int
    arena: int
    stack: int
    code: int = 0  # code copied to RAM at boot (RP2040); files from before 2026-12-01 lack it
    heap: int = 0  # likewise
    total: int
    available: int
    used_pct: float


class Berkeley(Record):
    """The text/data/bss triple ``arm-none-eabi-size`` prints."""

    text: int
    data: int
    bss: int


class Footprint(Record):
    """footprint.json of a linked image (harness.build.footprint.measure_footprint)."""

    board: str
    flash: FlashUse
    ram: RamUse
    berkeley: Berkeley
    sections: dict[str, int]
    weights_symbols: dict[str, int]
    model_bss_symbols: dict[str, int]
    arena_symbol: str | None
    fits: bool

    @classmethod
    def load(cls, path: Path) -> Footprint:
        return validate_record(cls, read_json(path), path)

    def write(self, path: Path) -> None:
        path.write_text(dumps(self))


class FlashBound(Record):
    total: int | None  # a lower bound (available + overflow), None when flash did not overflow
    available: int
    weights: int


class RamBound(Record):
    total: int | None
    available: int
    arena: int


class OverflowFootprint(Record):
    """footprint.json of an image that did not link (Mbed): what GNU ld's "region X overflowed by
    N bytes" says per region, plus the model's weights and arena from the code generator."""

    board: str
    source: str
    flash: FlashBound
    ram: RamBound
    linker_overflow: dict[str, int]
    fits: bool = False

    def write(self, path: Path) -> None:
        path.write_text(dumps(self))


AnyFootprint = Footprint | OverflowFootprint


def parse_footprint(data: Any, file: str | Path) -> AnyFootprint:
    """A footprint of either kind from JSON data (the overflow record has ``linker_overflow``)."""
    if isinstance(data, dict) and "linker_overflow" in data:
        return validate_record(OverflowFootprint, data, file)
    return validate_record(Footprint, data, file)


def load_footprint(path: Path) -> AnyFootprint:
    """A footprint.json of either kind."""
    return parse_footprint(read_json(path), path)


class ModelStats(Record):
    """What the code generator says about the model the image carries."""

    numeric: str
    macs: int
    weights_bytes: int
    arena_bytes: int
    layers: int


class BuildInputs(Record):
    """The fields every build.json has, a failed build's too (what was built, with what)."""

    board: str
    template: str
    out_dir: Path
    toolchain: str
    build_id: str
    model_hash: str
    generated_dir: Path | None
    model_stats: ModelStats


class BuildFailure(BuildInputs):
    """build.json of an Mbed build that could not start (no Mbed CE tree)."""

    status: str
    project_dir: Path
    commands: list[str]

    def write(self, path: Path) -> None:
        path.write_text(dumps(self))


class BuildResult(Record):
    """What a build produced (build.json). ``elf``/``bin``/``hex``/``footprint`` are None when the
    project was only generated (Mbed template without an Mbed tree; see ``commands``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    board: str
    template: str
    status: str  # "built" | "cached" | "generated, not compiled" | "prebuilt"
    out_dir: Path
    elf: Path | None
    bin: Path | None
    hex: Path | None
    footprint: Footprint | None
    firmware_sha256: str | None
    toolchain: str
    cache_hit: bool
    build_id: str
    model_hash: str
    generated_dir: Path | None
    model_stats: ModelStats | None = None  # None: an image the harness did not build (prebuilt)
    project_dir: Path | None = None
    commands: list[str] = Field(default_factory=list)
    seconds: float = 0.0

    @property
    def compiled(self) -> bool:
        return self.elf is not None

    @classmethod
    def load(cls, path: Path) -> BuildResult:
        return validate_record(cls, read_json(path), path)

    def write(self, path: Path) -> None:
        path.write_text(dumps(self))
