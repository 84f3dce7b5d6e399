"""Errors of the emulated boards: they name the board and what went wrong, never a bare UcError."""

from __future__ import annotations

from harness.errors import StageError


class SimError(StageError):
    """A simulated board could not run its firmware."""


class SimFault(SimError):
    """The firmware faulted: unmapped access, undefined instruction or a jump to a bad address."""

    def __init__(self, board: str, pc: int, instruction: str, reason: str, address: int | None = None):
        self.board, self.pc, self.instruction, self.reason, self.address = (
            board,
            pc,
            instruction,
            reason,
            address,
        )
        where = f" {address:#010x}" if address is not None else ""
        super().__init__(f"{board}: firmware fault at pc={pc:#010x} ({instruction}): {reason}{where}")


class SimTimeout(SimError):
    """The run exceeded its cycle or wall-clock budget (runaway or hung firmware)."""

    def __init__(self, board: str, pc: int, cycles: int, wall_s: float, budget: str):
        self.board, self.pc, self.cycles, self.wall_s = board, pc, cycles, wall_s
        super().__init__(
            f"{board}: firmware still running after {cycles} cycles / {wall_s:.2f} s wall time "
            f"({budget} exceeded); pc={pc:#010x}"
        )


class SimImageError(SimError):
    """A firmware image does not fit the board's flash."""
