"""Flashing errors: each names the board, the probe and the cause (shown to the user as is)."""

from __future__ import annotations

from harness.errors import StageError


class FlashError(StageError):
    """Programming a board failed."""

    def __init__(self, board: str, probe: str | None, cause: str):
        self.board, self.probe, self.cause = board, probe, cause
        super().__init__(f"flash {board} (probe {probe or 'auto'}): {cause}")


class NoProbeError(FlashError):
    """No debug probe (or DAPLink drive) with the requested id is connected."""


class ProbeConnectionError(FlashError):
    """The probe is there but talking to it or to the target failed."""


class WrongTargetError(FlashError):
    """The target type does not exist or does not match the connected chip/board."""


class FlashFailedError(FlashError):
    """The flash algorithm or the drive copy reported a failure."""


class VerifyError(FlashError):
    """Read-back differs from the image."""


class FlashTimeoutError(FlashError):
    """An operation did not finish within its time budget."""
