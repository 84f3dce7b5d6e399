"""The flasher interface every backend implements, and the choice of backend per board."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from harness.config.board import BoardConfig


@dataclass(frozen=True)
class ProbeInfo:
    unique_id: str
    description: str
    vendor: str = ""


class Flasher(ABC):
    """Program and control one board. Implementations raise harness.flash.errors.FlashError."""

    board: BoardConfig
    probe: str | None

    @abstractmethod
    def list_probes(self) -> list[ProbeInfo]:
        """Probes (or drives) this backend can see."""

    @abstractmethod
    def program(self, firmware: str | Path, verify: bool = True) -> None:
        """Write the image (ELF/HEX/BIN), verify it, and leave the board running it."""

    @abstractmethod
    def reset(self) -> None:
        """Reset the board and let it run."""

    @abstractmethod
    def run(self) -> None:
        """Resume a halted core."""

    @abstractmethod
    def halt(self) -> None:
        """Stop the core (left halted)."""


def flasher_for(
    board: BoardConfig, probe: str | None = None, drive: str | Path | None = None, timeout_s: float = 60.0
) -> Flasher:
    """The flasher registered (entry-point group ``harness.flashers``) under the board's
    ``flash.method``; a ``drive`` (a DAPLink mount point) always means the mass-storage copy.
    The simulated boards' method 'sim' is pyOCD through the ``sim:`` probe plugin."""
    from harness.instruments import registry

    method = "msd" if drive is not None else board.flash.method
    cls = registry.load(registry.FLASHERS, method)
    flasher: Flasher = cls(board, probe=probe, drive=drive, timeout_s=timeout_s)
    return flasher
