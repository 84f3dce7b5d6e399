"""Errors of the DUT link; each names the port, the command and what was received so the user
can tell a dead port from a wrong firmware from a protocol bug."""

from __future__ import annotations

from harness.errors import StageError


def _shown(received: str, limit: int = 300) -> str:
    text = received if len(received) <= limit else "..." + received[-limit:]
    return repr(text) if text else "nothing"


class DutError(StageError):
    """The device under test did not answer as the protocol requires."""

    def __init__(self, port: str, command: str, problem: str, received: str = ""):
        self.port = port
        self.command = command
        self.received = received
        super().__init__(f"DUT on {port}: command {command!r}: {problem}; received {_shown(received)}")


class DutTimeout(DutError):
    """No complete reply (ending in m-ready) within the time allowed."""


class DutProtocolError(DutError):
    """The firmware answered with an e- line or a malformed reply."""


class DutChecksumError(DutProtocolError):
    """A reply whose bytes do not match its ``m-crc`` line: corrupted on the wire."""


class DutFault(DutError):
    """The board reported a fault (a simulated board's core stopped on a HardFault, say): the
    command can never be answered, so the attempt ends at once instead of at its deadline."""
