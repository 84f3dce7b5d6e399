"""Typed configuration: boards, rigs and campaigns loaded from TOML and validated with pydantic."""

from harness.config.board import BoardConfig, load_board
from harness.config.campaign import CampaignConfig, load_campaign
from harness.config.loader import find_config, repo_root
from harness.config.rig import RigConfig, load_rig

__all__ = [
    "BoardConfig",
    "CampaignConfig",
    "RigConfig",
    "find_config",
    "load_board",
    "load_campaign",
    "load_rig",
    "repo_root",
]
