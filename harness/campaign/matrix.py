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

    @property
    def config_id(self) -> str:
        # Stable across runs: resume and baseline comparison match configurations by this id.
        return f"{self.model.id}/{self.compression.id}/{self.numeric}/{self.board}"

    @property
    def artifact_key(self) -> str:
        """Configurations differing only in board share one compressed artifact."""
        return f"{self.model.id}/{self.compression.id}/{self.numeric}"


def expand(campaign: CampaignConfig) -> list[ConfigPoint]:
    """Matrix in an order that keeps one artifact's boards together (its build is reused)."""
    return [
        ConfigPoint(m, c, q, b)
        for m in campaign.models
        for c in campaign.compression
        for q in campaign.quantization
        for b in campaign.boards
    ]
