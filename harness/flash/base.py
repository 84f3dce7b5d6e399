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
    """pyOCD for 'pyocd' and 'sim' boards (sim boards through the ``sim:`` probe plugin), the
    mass-storage copy for 'msd' boards (``drive`` = the DAPLink mount point)."""
    if board.flash.method == "msd" or drive is not None:
        from harness.flash.msd import MassStorageFlasher

        return MassStorageFlasher(board, drive=drive, probe=probe, timeout_s=timeout_s)
    from harness.flash.pyocd_flasher import PyocdFlasher

    if probe is None and board.flash.method == "sim":
        probe = f"sim:{board.name}"
    return PyocdFlasher(board, probe=probe, timeout_s=timeout_s)
