"""The measurement procedure of seed 002 Sec. 5.4: n inferences, each inside its own triggered
power-analyzer record (idle before and after it for the baseline), timed by one or more timing
sources; latency, power and energy per inference."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.instruments.energy import InferenceMeasurement, measure_window
from harness.instruments.errors import InstrumentConnectionError, InstrumentError
from harness.instruments.protocols import PowerMonitor, TimingSource
from harness.instruments.timing import Evidence, PaTriggerTiming, PulseTiming, cross_check
from harness.instruments.waveform import Waveform

# Which source's latency is reported: those that time the GPIO (or the code) itself first; the
# current-derived end edge of pa-trigger last, because boards keep drawing active current after
# the GPIO falls (sending the reply, bookkeeping). Unknown sources rank after the analyzers.
PRECEDENCE = {"scope": 0, "logic-analyzer": 1, "digital-input": 1, "cycle-counter": 3, "pa-trigger": 4}
UNKNOWN_PRECEDENCE = 2
BUS_TRIGGER_LATENCY_S = 0.05
# host -> DUT command latency allowed for with a BUS trigger
FETCH_MARGIN_S = 10.0  # the inference is over when infer() returns: the record ends soon after
COUNTER_BITS = 24  # the shortest on-chip counter (SysTick); longer inferences may wrap it


class InferenceRunner(Protocol):
    """Host side of the DUT link (harness.dut.DutLink satisfies it): run ``warmup`` unmeasured
    then ``n`` measured inferences, ``gap_us`` idle before each; the result has ``cycles``."""

    def infer(self, n: int, warmup: int, gap_us: int) -> Any: ...


# The pre-trigger part of a record holds the idle baseline; the monitor must fill it (in real
# time) after every arm, so for long inferences a fixed amount is enough: 10 ms is hundreds of
# samples at the intervals used, and 20 % of a 2.5 s inference cost 0.6 s of waiting per repetition.
PRETRIGGER_CAP_S = 0.010


@dataclass(frozen=True)
class MeasureSettings:
    n: int = 8
    warmup: int = 1
    gap_us: int = 20_000
    sample_interval_s: float | None = None  # None = the finest the module allows
    pretrigger_s: float | None = None  # default: max(40 samples, min(20 % of the latency, PRETRIGGER_CAP_S))
    window_factor: float = 1.5  # record length after the trigger, relative to the expected latency
    post_s: float = 2e-3  # plus this much idle after the expected end
    measure_voltage: bool = True
    cross_check_tolerance: float = 0.02
    edge_aware: bool = True
    expected_latency_s: float | None = None  # None: from a calibration inference's cycle count


def _counted(result: Any, clock_hz: float) -> list[tuple[int | None, float | None]]:
    """(cycles, latency_s) per measured inference; the DUT result's own ``latencies_s()`` is
    preferred (it knows the counter's rate and overhead), else cycles / clock_hz. None where the
    counter wrapped."""
    cycles = list(getattr(result, "cycles", []) or [])
    if not cycles:
        raise InstrumentError("the DUT returned no cycle counts")
    lat = result.latencies_s() if hasattr(result, "latencies_s") else [
        None if c is None else c / clock_hz for c in cycles
    ]
    return [(None if c is None else int(c), v) for c, v in zip(cycles, lat, strict=True)]


def measure_inferences(pa: PowerMonitor | None, runner: InferenceRunner, clock_hz: float,
                       sources: list[TimingSource], settings: MeasureSettings = MeasureSettings(),
                       trigger_pin: int | None = None,
                       on_record: Callable[[int, Waveform, InferenceMeasurement], None] | None = None,
                       ) -> list[InferenceMeasurement]:
    """Run ``settings.n`` measured inferences on a board whose supply ``pa`` already provides.

    ``pa`` None: a latency-only rig; latency from the sources that need no power monitor
    (cycle counter, scope, logic analyzer), power and energy NaN ("n/a" in reports).
    ``trigger_pin``: the monitor's digital input wired to the GPIO (None = software trigger sent
    just before each inference, less exact). The reported latency comes from the source ranked
    first in PRECEDENCE and the others are cross-checked against it; the energy window starts
    where a source locates the pulse on the record (pa-trigger: the current step at the
    trigger), else at the trigger sample, and lasts the reported latency.
    ``on_record(index, waveform, measurement)`` sees every raw record (to keep it as a trace).
    """
    if not sources:
        raise ValueError("at least one timing source is needed")
    if pa is None:
        return _latency_only(runner, clock_hz, sources, settings)
    expected = settings.expected_latency_s
    if expected is None:
        expected = calibrate_latency(pa, runner, clock_hz, settings, trigger_pin)
    tint_hint = settings.sample_interval_s or 5.12e-6
    pre = (settings.pretrigger_s if settings.pretrigger_s is not None
           else max(40 * tint_hint, min(0.2 * expected, PRETRIGGER_CAP_S)))
    window = expected * settings.window_factor + settings.post_s
    if trigger_pin is None:  # a BUS trigger comes before the DUT's idle gap, not at the edge
        window += settings.gap_us * 1e-6 + BUS_TRIGGER_LATENCY_S
    plan = pa.configure_acquisition(window, pre, trigger_pin=trigger_pin, sample_interval_s=settings.sample_interval_s,
                                    measure_voltage=settings.measure_voltage)
    results = []
    for i in range(settings.n):
        pa.arm()
        try:
            for s in sources:
                s.arm()
            if trigger_pin is None:
                pa.trigger()
            laps = runner.infer(1, 0, settings.gap_us)
            cycles, counted_s = _counted(laps, clock_hz)[0]
            wf = pa.fetch(timeout_s=plan.duration_s + FETCH_MARGIN_S)
        except BaseException:
            _quiet_abort(pa)
            raise
        evidence = Evidence(wf, plan.pretrigger_points, cycles, counted_s)
        timings = _read_all(sources, evidence, i)
        measured = _one(i, wf, timings, settings, cycles)
        if cycles is None:
            _check_wrapped_lap(measured.latency_s, laps, clock_hz, i)
        results.append(measured)
        if on_record is not None:  # e.g. keep the raw record as a trace file
            on_record(i, wf, measured)
    return results


def _check_wrapped_lap(latency_s: float, laps: Any, clock_hz: float, index: int) -> None:
    """A lap the firmware reports as wrapped lasted at least one full 24-bit SysTick period: a
    shorter pulse on the monitor is a misread (a low-current phase taken for the end), so it
    is refused rather than stored."""
    hz = getattr(laps, "counter_hz", None) or clock_hz
    floor = (1 << COUNTER_BITS) / hz
    if latency_s < floor:
        raise InstrumentError(
            f"inference {index}: the monitor timed {latency_s * 1e3:.3f} ms, but the on-chip counter wrapped, "
            f"so the inference took at least {floor * 1e3:.3f} ms ({1 << COUNTER_BITS} ticks at {hz:g} Hz)")


def calibrate_latency(pa: PowerMonitor, runner: InferenceRunner, clock_hz: float, settings: MeasureSettings,
                      trigger_pin: int | None) -> float:
    """Expected latency for sizing the record: one unmeasured inference timed by the on-chip
    counter, or, when the counter wrapped (a long inference, a 24-bit SysTick), by the monitor's
    current waveform alone, widening the record until the pulse fits."""
    calib = [v for _, v in _counted(runner.infer(1, settings.warmup, settings.gap_us), clock_hz)]
    if all(v is not None for v in calib):
        return max(v for v in calib if v is not None)
    if trigger_pin is None:
        raise InstrumentError("the on-chip counter wrapped and no digital input is wired to time the inference on "
                              "the power monitor (set trigger_pin in the rig file)")
    guess = 4 * (1 << COUNTER_BITS) / clock_hz
    last: Exception | None = None
    for _ in range(4):
        tint = max(settings.sample_interval_s or 0.0, 2.0 * guess / 100_000)  # the long record must fit
        trial = MeasureSettings(n=1, warmup=0, gap_us=settings.gap_us, expected_latency_s=guess, sample_interval_s=tint,
                                measure_voltage=settings.measure_voltage)
        try:
            (m,) = measure_inferences(pa, runner, clock_hz, [PaTriggerTiming()], trial, trigger_pin=trigger_pin)
            return m.latency_s
        except InstrumentError as exc:
            if isinstance(exc, InstrumentConnectionError):
                raise
            last = exc
            guess *= 4
    raise InstrumentError(f"could not time the inference on the power monitor: {last}")


def _latency_only(runner: InferenceRunner, clock_hz: float, sources: list[TimingSource],
                  settings: MeasureSettings) -> list[InferenceMeasurement]:
    nan = float("nan")
    if settings.warmup:
        runner.infer(1, settings.warmup, settings.gap_us)
    out = []
    for i in range(settings.n):
        for s in sources:
            s.arm()
        cycles, counted_s = _counted(runner.infer(1, 0, settings.gap_us), clock_hz)[0]
        timings = sorted(_read_all(sources, Evidence(None, None, cycles, counted_s), i),
                         key=lambda t: PRECEDENCE.get(t.source, UNKNOWN_PRECEDENCE))
        check = cross_check(timings, settings.cross_check_tolerance)
        out.append(InferenceMeasurement(
            index=i, latency_s=timings[0].duration_s, energy_j=nan, power_w=nan, baseline_power_w=nan,
            energy_net_j=nan, power_net_w=nan, sample_interval_s=nan, timing_source=timings[0].source,
            latency_by_source_s={t.source: t.duration_s for t in timings}, cross_check_deviation=check.deviation,
            cross_check_ok=check.ok, voltage_measured=False, cycles=cycles))
    return out


def _read_all(sources: list[TimingSource], evidence: Evidence, index: int) -> list[PulseTiming]:
    """Every source's timing. A source that cannot time this pulse (a wrapped counter, no clear
    current step) is left out and the cross-check has less to compare; none left is an error."""
    out, failures = [], []
    for src in sources:
        try:
            out.append(src.read(evidence))
        except (ValueError, InstrumentError) as exc:
            failures.append(f"{src.name}: {exc}")
    if not out:
        raise InstrumentError(f"inference {index}: no timing source could time the pulse ({'; '.join(failures)})")
    return out


def _quiet_abort(pa: PowerMonitor) -> None:
    with contextlib.suppress(Exception):
        pa.abort()


def _one(index: int, wf: Any, timings: list[PulseTiming], settings: MeasureSettings, cycles: int | None
         ) -> InferenceMeasurement:
    timings = sorted(timings, key=lambda t: PRECEDENCE.get(t.source, UNKNOWN_PRECEDENCE))
    primary = timings[0]
    located = next((t for t in timings if t.has_window), None)
    start = located.start_s if located is not None else 0.0
    assert start is not None
    end = start + primary.duration_s
    if end > wf.t_end_s:
        raise InstrumentError(
            f"inference {index}: the pulse ({primary.duration_s * 1e3:.3f} ms) outlasts the record; "
            "the inference took longer than the calibration run"
        )
    check = cross_check(timings, settings.cross_check_tolerance)
    m = measure_window(
        wf, start, end, index=index, timing_source=primary.source, edge_aware=settings.edge_aware,
        latency_by_source_s={t.source: t.duration_s for t in timings},
        cross_check_deviation=check.deviation, cross_check_ok=check.ok, cycles=cycles,
    )
    if not math.isfinite(m.energy_j):
        raise InstrumentError(f"inference {index}: energy is not finite")
    return m
