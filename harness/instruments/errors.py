"""Instrument errors. Kept here until the lead moves them into harness.errors."""

from __future__ import annotations

from harness.errors import StageError


class InstrumentError(StageError):
    """An instrument refused a command or a setting, or is unreachable; carries its own message."""

    def __init__(self, message: str, instrument_errors: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.instrument_errors = instrument_errors or []


class SafetyError(InstrumentError):
    """A requested setting would exceed the board's limits; nothing was sent to the instrument."""
