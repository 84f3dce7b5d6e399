"""Prebuilt firmware in a campaign (``[[firmware]]`` entries): a team's own image, built by its own
build system with the porting layer (firmware_templates/porting/), measured like a generated one.

There is no artifact: nothing is compressed or built, and the on-device accuracy check is skipped
(the harness has no reference model). The configuration id is ``<id>/prebuilt/<numeric>/<board>``
and its runtime is "prebuilt", so compare matches it against the same entry of another run."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.campaign.build_options import ID_RE

if TYPE_CHECKING:
    from harness.campaign.matrix import ConfigPoint
    from harness.campaign.prepare import Prepared

COMPRESSION_ID = "prebuilt"
RUNTIME = "prebuilt"


class PrebuiltFirmware(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(description="Name of the workload; the configuration's model id")
    board: str = Field(description="Board it was built for (boards/<name>.toml); must be on the rig")
    path: str = Field(description="ELF (or HEX) image; relative paths are relative to the campaign file")
    version: str = Field(description="The model-hash the firmware reports in identify (harness_workload_t.version)")
    numeric: str = Field("custom", description="Numeric type, for the tables (int8, float32, ...)")
    input: str | None = Field(None, description="Raw input file (default: fixed pseudo-random bytes)")

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not ID_RE.match(v):
            raise ValueError("ids may use letters, digits, '_', '-', '.'")
        return v


def _resolve(p: str, base: Path) -> Path:
    path = Path(p)
    return path if path.is_absolute() else (base / path).resolve()


def points(campaign: Any) -> list[ConfigPoint]:
    from harness.campaign.matrix import ConfigPoint
    from harness.config.campaign import CompressionSettings, ModelSettings

    base = Path(campaign.source_file).parent if campaign.source_file else Path.cwd()
    out = []
    for fw in campaign.firmware:
        resolved = fw.model_copy(update={"path": str(_resolve(fw.path, base)),
                                         "input": str(_resolve(fw.input, base)) if fw.input else None})
        out.append(ConfigPoint(ModelSettings(id=fw.id, arch=resolved.path), CompressionSettings(id=COMPRESSION_ID),
                               fw.numeric, fw.board, prebuilt=resolved))
    return out


def prepare(point: ConfigPoint) -> Prepared:
    """A Prepared whose build is the given image (hashed, footprint from the ELF)."""
    from harness.build.firmware import BuildResult
    from harness.build.footprint import measure_footprint
    from harness.campaign.prepare import Prepared
    from harness.config.board import load_board

    fw = point.prebuilt
    assert fw is not None
    image = Path(fw.path)
    prep = Prepared(point)
    if not image.is_file():
        prep.error = f"prebuilt firmware {image} does not exist (campaign [[firmware]] entry {fw.id!r})"
        return prep
    board = load_board(fw.board)
    sha = hashlib.sha256(image.read_bytes()).hexdigest()
    fp = measure_footprint(image, board, []) if image.suffix == ".elf" else None
    prep.build = BuildResult(
        board=board.name, template="prebuilt", status="prebuilt", out_dir=image.parent, elf=image, bin=None,
        hex=None, footprint=fp, firmware_sha256=sha, toolchain="prebuilt (not built by the harness)",
        cache_hit=False, build_id=sha[:12], model_hash=fw.version, generated_dir=None,
    )
    prep.fits = fp.fits if fp else True
    if not prep.fits:
        prep.error = "the prebuilt image does not fit the board's flash/RAM"
    return prep


def measurement_input(point: ConfigPoint, input_bytes: int) -> bytes:
    """The entry's input file (its size must match what the firmware reports), else fixed
    pseudo-random bytes (seed 0), as `harness measure` uses."""
    fw = point.prebuilt
    assert fw is not None
    if fw.input is None:
        return np.random.default_rng(0).integers(0, 256, input_bytes, dtype=np.uint8).tobytes()
    data = Path(fw.input).read_bytes()
    if len(data) != input_bytes:
        raise ValueError(f"{fw.input}: {len(data)} bytes, the firmware's input is {input_bytes} bytes")
    return data
