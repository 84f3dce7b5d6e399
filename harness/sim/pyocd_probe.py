"""pyOCD probe plugin for the simulated boards (uid ``sim:<board>``, e.g. ``sim:sim-m4``).

Registered through the ``pyocd.probe`` entry point, so ``pyocd list``, ``pyocd flash -u sim:sim-m4
-t sim_m4 fw.hex``, ``pyocd server`` and the Python API reach the emulated board exactly like a
CMSIS-DAP probe: DP/AP register accesses go to the board's SimDap. In-process the board comes from
``harness.sim.registry`` (the same object a SimRig runs); in a separate process a board with the
same persistent flash file is created, so programming survives into the process that runs it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyocd  # noqa: F401  (import pyOCD before its plugin base classes: avoids a circular import)
from pyocd.core.plugin import Plugin
from pyocd.probe.debug_probe import DebugProbe

if TYPE_CHECKING:
    from harness.sim.debugport import SimDap

LOG = logging.getLogger(__name__)
PREFIX = "sim:"


def _board_names() -> list[str]:
    from harness.sim import registry

    return sorted(set(registry.sim_board_names()) | set(registry.registered()))


class SimProbe(DebugProbe):
    """Debug probe wired to one simulated board."""

    @classmethod
    def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
        return [cls(name) for name in _board_names()]

    @classmethod
    def get_probe_with_id(cls, unique_id, is_explicit=False):
        name = unique_id[len(PREFIX) :] if unique_id.lower().startswith(PREFIX) else unique_id
        return cls(name) if name in _board_names() else None

    def __init__(self, board_name: str):
        super().__init__()
        self._name = board_name
        self._dap: SimDap | None = None
        self._is_open = False
        self._protocol = None
        self._reset_asserted = False

    @property
    def board(self):
        from harness.sim import registry

        return registry.get_or_create(self._name)

    @property
    def description(self) -> str:
        return f"Simulated {self._name}"

    @property
    def vendor_name(self) -> str:
        return "mcu-bench-harness"

    @property
    def product_name(self) -> str:
        return f"Simulated {self._name}"

    @property
    def supported_wire_protocols(self):
        return [DebugProbe.Protocol.DEFAULT, DebugProbe.Protocol.SWD]

    @property
    def unique_id(self) -> str:
        return PREFIX + self._name

    @property
    def wire_protocol(self):
        return self._protocol

    @property
    def is_open(self) -> bool:
        return self._is_open

    @property
    def capabilities(self):
        return {DebugProbe.Capability.MANAGED_AP_SELECTION}

    def open(self) -> None:
        from harness.sim.debugport import SimDap

        self._dap = SimDap(self.board)
        self._is_open = True

    def close(self) -> None:
        if self._dap is not None:
            board = self._dap.bus.board
            if board.debug.started_board:  # the core ran only for this debugger: stop it with it
                board.debug.started_board = False
                board.stop()
            if board.flash.dirty:
                board.flash.save()
        self._is_open = False

    def connect(self, protocol=None) -> None:
        self._protocol = DebugProbe.Protocol.SWD

    def disconnect(self) -> None:
        self._protocol = None

    def swj_sequence(self, length, bits) -> None:
        pass

    def set_clock(self, frequency) -> None:
        pass

    def reset(self) -> None:
        assert self._dap is not None
        self._dap.bus.reset(halt=bool(self._dap.bus.board.scb.demcr & 1))

    def assert_reset(self, asserted) -> None:
        if self._reset_asserted and not asserted:
            self.reset()
        self._reset_asserted = bool(asserted)

    def is_reset_asserted(self) -> bool:
        return self._reset_asserted

    def flush(self) -> None:
        pass

    def read_dp(self, addr, now=True):
        assert self._dap is not None
        value = self._dap.read_dp(addr)
        return value if now else (lambda: value)

    def write_dp(self, addr, data) -> None:
        assert self._dap is not None
        self._dap.write_dp(addr, data)

    def read_ap(self, addr, now=True):
        assert self._dap is not None
        value = self._dap.read_ap(addr)
        return value if now else (lambda: value)

    def write_ap(self, addr, data) -> None:
        assert self._dap is not None
        self._dap.write_ap(addr, data)

    def read_ap_multiple(self, addr, count=1, now=True):
        assert self._dap is not None
        values = self._dap.read_ap_block(addr, count)
        return values if now else (lambda: values)

    def write_ap_multiple(self, addr, values) -> None:
        assert self._dap is not None
        self._dap.write_ap_block(addr, values)

    def get_memory_interface_for_ap(self, ap_address):
        return None

    def __repr__(self) -> str:
        return f"<SimProbe {self.unique_id}>"


class SimProbePlugin(Plugin):
    def load(self):
        try:
            from harness.sim import registry
            from harness.sim.pyocd_targets import register_targets

            register_targets(registry.sim_board_names())
        except Exception as exc:  # never break pyOCD for its other probes
            LOG.warning("simulated board targets not registered: %s", exc)
        return SimProbe

    @property
    def name(self):
        return "sim"

    @property
    def description(self):
        return "Simulated Cortex-M boards of the benchmarking harness"
