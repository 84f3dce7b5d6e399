"""Expansion of a campaign's matrix into configurations with stable ids."""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.campaign import CampaignConfig, CompressionSettings, ModelSettings


@dataclass(frozen=True)
class ConfigPoint:
    """One cell of the matrix: a model, a compression setting, a numeric type and a board."""

    model: ModelSettings
    compression: CompressionSettings
    numeric: str
    board: str
    runtime: str = "portable"  # kernel backend: our portable runtime or "cmsis-nn" (Table 5's toolflow axis)

    @property
    def config_id(self) -> str:
        # Stable across runs: resume and baseline comparison match configurations by this id
        # (the default runtime adds nothing, so ids of campaigns without a runtime axis never change).
        base = f"{self.model.id}/{self.compression.id}/{self.numeric}/{self.board}"
        return base if self.runtime == "portable" else f"{base}/{self.runtime}"

    @property
    def artifact_key(self) -> str:
        """Configurations differing only in board share one compressed artifact."""
        return f"{self.model.id}/{self.compression.id}/{self.numeric}"


def expand(campaign: CampaignConfig) -> list[ConfigPoint]:
    """Matrix in an order that keeps one artifact's boards together (its build is reused)."""
    return [
        ConfigPoint(m, c, q, b, r)
        for m in campaign.models
        for c in campaign.compression
        if not c.models or m.id in c.models
        for q in campaign.quantization
        for b in campaign.boards
        for r in campaign.runtimes
    ]
