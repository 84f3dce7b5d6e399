"""Instrument errors, typed so that callers decide on retries by class, never by message."""

from __future__ import annotations

from harness.errors import StageError


class InstrumentError(StageError):
    """An instrument refused a command or a setting, or is unreachable; carries its own message."""

    def __init__(self, message: str, instrument_errors: list[tuple[int, str]] | None = None):
        super().__init__(message)
        self.instrument_errors = instrument_errors or []


class SafetyError(InstrumentError):
    """A requested setting would exceed the board's limits; nothing was sent to the instrument."""


class InstrumentConnectionError(InstrumentError):
    """The connection to the instrument broke or timed out (cable, reboot, a killed socket):
    the driver's session is unusable until ``reconnect()``; the instrument itself may be fine."""


class OutputOffUnconfirmed(SafetyError):
    """An output could not be confirmed off, even over a fresh connection: check the bench."""
