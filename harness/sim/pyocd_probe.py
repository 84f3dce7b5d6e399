"""pyOCD probe plugin for simulated boards (uid prefix ``sim:``). Work in progress: lists none yet."""

from __future__ import annotations

from pyocd.core.plugin import Plugin
from pyocd.probe.debug_probe import DebugProbe


class SimProbe(DebugProbe):
    @classmethod
    def get_all_connected_probes(cls, unique_id=None, is_explicit=False):
        return []

    @classmethod
    def get_probe_with_id(cls, unique_id, is_explicit=False):
        return None


class SimProbePlugin(Plugin):
    def load(self):
        return SimProbe

    @property
    def name(self):
        return "sim"

    @property
    def description(self):
        return "Simulated Cortex-M boards of the benchmarking harness"
