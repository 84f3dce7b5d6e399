"""In-process registry of simulated boards, so the pyOCD probe plugin, the SimRig and the tests
share ONE SimBoard per board name (flash, then run, without going through files)."""

from __future__ import annotations

import threading

from harness.config.board import BoardConfig, list_boards, load_board
from harness.sim.board import SimBoard

_boards: dict[str, SimBoard] = {}
_lock = threading.RLock()


def sim_board_names() -> list[str]:
    """Board files whose flash method is 'sim' (what the probe plugin lists)."""
    names = []
    for name in list_boards():
        try:
            if load_board(name).simulated:
                names.append(name)
        except Exception:  # an invalid board file is reported by `harness validate`, not here
            continue
    return names


def register(board: SimBoard) -> SimBoard:
    with _lock:
        _boards[board.name] = board
        return board


def unregister(name: str) -> None:
    with _lock:
        _boards.pop(name, None)


def get(name: str) -> SimBoard | None:
    with _lock:
        return _boards.get(name)


def get_or_create(name_or_config: str | BoardConfig) -> SimBoard:
    """The registered board of that name, or a new one (persistent flash) registered now."""
    with _lock:
        name = name_or_config if isinstance(name_or_config, str) else name_or_config.name
        board = _boards.get(name)
        if board is None:
            cfg = load_board(name) if isinstance(name_or_config, str) else name_or_config
            board = register(SimBoard(cfg))
        return board


def registered() -> list[str]:
    with _lock:
        return sorted(_boards)
