"""Build the timing sources a rig file lists (``[[timing]]``), in the rig's order: the first is
the primary source."""

from __future__ import annotations

from harness.config.board import BoardConfig
from harness.config.rig import RigConfig
from harness.instruments.timing import CycleCounterTiming, PaTriggerTiming, TimingSource
from harness.instruments.visa import ScpiInstrument, open_resource


def build_timing_sources(rig: RigConfig, board: BoardConfig) -> list[TimingSource]:
    out: list[TimingSource] = []
    for t in rig.timing:
        if t.kind == "pa-trigger":
            out.append(PaTriggerTiming())
        elif t.kind == "cycle-counter":
            out.append(CycleCounterTiming(board.clock_hz))
        elif t.kind == "scope":
            from harness.instruments.scope import ScopeTiming

            assert t.resource is not None and t.dialect is not None  # enforced by RigConfig
            res = open_resource(t.resource, rig.power_analyzer.backend, rig.power_analyzer.timeout_ms)
            out.append(ScopeTiming(ScpiInstrument(res, f"scope at {t.resource}"), t.dialect, t.channel))
        elif t.kind == "logic-analyzer":
            from harness.instruments.logic import LogicAnalyzerTiming

            out.append(LogicAnalyzerTiming(driver=t.resource or "fx2lafw", channel=t.channel or "D0",
                                           active_high=board.gpio.active_high))
    return out
