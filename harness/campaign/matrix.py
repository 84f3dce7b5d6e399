"""Expansion of a campaign's matrix into configurations with stable ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.campaign.build_options import DEFAULT, DEFAULT_ID, BuildOptions
from harness.campaign.prebuilt import RUNTIME, PrebuiltFirmware
from harness.config.campaign import CampaignConfig, CompressionSettings, ModelSettings


@dataclass(frozen=True)
class ConfigPoint:
    """One cell of the matrix: a model, a compression setting, a numeric type, a board and a
    build variant (``None``: the campaign has no ``[[build]]`` axis, harness defaults)."""

    model: ModelSettings
    compression: CompressionSettings
    numeric: str
    board: str
    build: BuildOptions | None = None
    prebuilt: PrebuiltFirmware | None = None  # a [[firmware]] entry: measured as given, not built

    @property
    def build_options(self) -> BuildOptions:
        return self.build or DEFAULT

    @property
    def config_id(self) -> str:
        # Stable across runs: resume and baseline comparison match configurations by this id.
        # The default variant (no [[build]] axis, or one with id "default") keeps the four-part id,
        # so older runs stay comparable and resumable.
        base = f"{self.model.id}/{self.compression.id}/{self.numeric}/{self.board}"
        return base if self.build_options.id == DEFAULT_ID else f"{base}/{self.build_options.id}"

    @property
    def runtime(self) -> str:
        """Kernel backend (Table 5's toolflow axis): our portable runtime or "cmsis-nn"."""
        return self.build_options.backend or "portable"

    @property
    def artifact_key(self) -> str:
        """Configurations differing only in board or build options share one compressed artifact."""
        return f"{self.model.id}/{self.compression.id}/{self.numeric}"

    def store_extra(self) -> dict[str, Any]:
        """Stored with the configuration: what compare's identity and reports read back."""
        if self.prebuilt is not None:
            return {"build_variant": DEFAULT_ID, "build_options": {"backend": RUNTIME, "image": self.prebuilt.path}}
        return {"build_variant": self.build_options.id, "build_options": self.build_options.identity(),
                "runtime": self.runtime}

    def build_kwargs(self, board: Any, more_cflags: list[str] | None = None) -> dict[str, Any]:
        return self.build_options.build_kwargs(board, more_cflags)


def expand(campaign: CampaignConfig) -> list[ConfigPoint]:
    """Matrix in an order that keeps one artifact's boards together (its build is reused), then
    the campaign's prebuilt [[firmware]] entries."""
    from harness.campaign import prebuilt

    builds: list[BuildOptions | None] = list(campaign.build) or [None]
    if campaign.runtimes != ["portable"]:  # the runtime axis is sugar for build variants with a backend
        builds = [_with_runtime(v, r) for v in builds for r in campaign.runtimes]
    return [
        ConfigPoint(m, c, q, b, v)
        for m in campaign.models
        for c in campaign.compression
        if not c.models or m.id in c.models
        for q in campaign.quantization
        for b in campaign.boards
        for v in builds
    ] + prebuilt.points(campaign)



def _with_runtime(variant: BuildOptions | None, runtime: str) -> BuildOptions | None:
    """``variant`` with kernel backend ``runtime``; the portable runtime on the default variant
    stays the default (its configuration ids do not change)."""
    if runtime == "portable" and variant is None:
        return None
    base = variant or DEFAULT
    vid = runtime if variant is None else f"{variant.id}-{runtime}"
    return base.model_copy(update={"backend": runtime, "id": vid})
