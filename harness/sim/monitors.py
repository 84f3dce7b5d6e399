"""Simulated counterparts of the streaming power monitors (PPK2, Joulescope), each fed by one
simulated board's SignalBus, started by harness.sim.rig.RigResources when a rig file says
``resource = "sim"`` for them. Each has ``address`` (what the real driver opens), ``options``
(driver settings the simulated part needs) and ``stop()``."""

from __future__ import annotations

from typing import Any

from harness.config.board import BoardConfig
from harness.sim.errors import SimError
from harness.sim.signals import SignalBus


def start(kind: str, board: BoardConfig, bus: SignalBus, trigger_pin: int) -> Any:
    """``trigger_pin`` n wires the board's GPIO to the monitor's n-th digital input (from 1)."""
    if kind == "ppk2":
        from harness.sim.ppk2 import SimPpk2

        return SimPpk2(bus, gpio_input=trigger_pin - 1).start()
    if kind == "joulescope":
        from harness.sim.joulescope import SimJoulescope

        return SimJoulescope(bus, board.supply.nominal_v, gpio_input=trigger_pin - 1).start()
    raise SimError(f"no simulated counterpart of power monitor {kind!r} (simulated: n6705a, ppk2, joulescope)")
