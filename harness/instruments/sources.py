"""Build the timing sources a rig file lists (``[[timing]]``), in the rig's order (the first is
the primary source). Each kind is a driver found by name (entry-point group
``harness.timing_sources``); the factories below are the harness's own entries."""

from __future__ import annotations

from collections.abc import Callable

from harness.config.board import BoardConfig
from harness.config.rig import RigConfig, TimingSettings
from harness.instruments import registry
from harness.instruments.protocols import TimingSource
from harness.instruments.timing import CycleCounterTiming, DigitalInputTiming, PaTriggerTiming
from harness.instruments.visa import ScpiInstrument, open_resource

TimingFactory = Callable[[TimingSettings, BoardConfig, RigConfig], TimingSource]


def build_timing_sources(rig: RigConfig, board: BoardConfig, *, with_monitor: bool = True) -> list[TimingSource]:
    """``with_monitor=False`` (a latency-only rig) leaves out sources that read the power
    monitor's record (pa-trigger, digital-input): there is none."""
    out: list[TimingSource] = []
    for t in rig.timing:
        factory: TimingFactory = registry.load(registry.TIMING_SOURCES, t.kind)
        source = factory(t, board, rig)
        if not with_monitor and source.needs_monitor:
            source.close()
            continue
        out.append(source)
    return out


def pa_trigger(t: TimingSettings, board: BoardConfig, rig: RigConfig) -> TimingSource:
    return PaTriggerTiming()


def digital_input(t: TimingSettings, board: BoardConfig, rig: RigConfig) -> TimingSource:
    return DigitalInputTiming()


def cycle_counter(t: TimingSettings, board: BoardConfig, rig: RigConfig) -> TimingSource:
    return CycleCounterTiming(board.clock_hz)


def scope(t: TimingSettings, board: BoardConfig, rig: RigConfig) -> TimingSource:
    from harness.instruments.scope import ScopeTiming

    assert t.resource is not None and t.dialect is not None  # enforced by RigConfig
    res = open_resource(t.resource, rig.power_analyzer.backend, rig.power_analyzer.timeout_ms)
    return ScopeTiming(ScpiInstrument(res, f"scope at {t.resource}"), t.dialect, t.channel)


def logic_analyzer(t: TimingSettings, board: BoardConfig, rig: RigConfig) -> TimingSource:
    from harness.instruments.logic import LogicAnalyzerTiming

    return LogicAnalyzerTiming(driver=t.resource or "fx2lafw", channel=t.channel or "D0",
                               active_high=board.gpio.active_high)
