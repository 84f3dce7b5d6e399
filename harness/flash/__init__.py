"""Programming firmware into boards: one Flasher interface, pyOCD and mass-storage backends."""

from harness.flash.base import Flasher, ProbeInfo, flasher_for
from harness.flash.errors import (
    FlashError,
    FlashFailedError,
    FlashTimeoutError,
    NoProbeError,
    ProbeConnectionError,
    VerifyError,
    WrongTargetError,
)

__all__ = [
    "FlashError",
    "FlashFailedError",
    "FlashTimeoutError",
    "Flasher",
    "NoProbeError",
    "ProbeConnectionError",
    "ProbeInfo",
    "VerifyError",
    "WrongTargetError",
    "flasher_for",
]
