"""Everything done with one flashed board for one configuration: flash, verify identity, check
outputs against the host reference, and take the measured repetitions."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.campaign.bench import Bench, Station
from harness.errors import StageError
from harness.ir import Artifact

IDLE_GAP_US = 2_000  # idle before each measured inference: the baseline power window


@dataclass
class AccuracyCheck:
    samples: int
    device_accuracy: float  # % of samples the device classifies correctly
    host_agreement: float  # % of samples where device and host reference predict the same class
    bit_exact: float  # % of samples whose raw output bytes equal the reference's
    timed_agrees: bool = True  # the first input, run with full timing, gave the host's class


def flash_and_identify(st: Station, firmware: Path, expected_hash: str, log: Callable[[str], None],
                       inference_timeout_s: float = 60.0) -> Any:
    """Program with verify (the flasher resets the board after), then check that the board
    answers the protocol and runs the expected model."""
    from harness.dut import DutError
    from harness.flash.base import flasher_for

    flasher = flasher_for(st.board, probe=st.probe)
    log(f"flashing {firmware.name} through {st.probe}")
    flasher.program(firmware, verify=True)
    link = open_link(st, inference_timeout_s)
    try:
        for attempt in range(3):  # the boot banner may still be arriving just after the reset
            try:
                link.resync()
                info = link.identify()
                break
            except DutError:
                if attempt == 2:
                    raise
                time.sleep(0.2)
    except BaseException:
        link.close()
        raise
    if info.model_hash != expected_hash:
        link.close()
        raise StageError(
            f"{st.board.name}: the board runs model {info.model_hash}, expected {expected_hash} (flash did not take?)"
        )
    return link


def open_link(st: Station, inference_timeout_s: float, wait_s: float = 10.0) -> Any:
    """Open the board's serial port, waiting for it to come back: a USB CDC port (e.g. the
    Nano 33 BLE's) disappears for a moment when the board resets after flashing."""
    from harness.dut import DutError, DutLink

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return DutLink(st.serial_url, baudrate=st.dut.baudrate or st.board.uart.baudrate, timeout=10.0,
                           per_inference_timeout=inference_timeout_s,
                           fault_check=_fault_check(st))
        except DutError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _fault_check(st: Station) -> Callable[[], str | None]:
    """Why the board stopped answering (a simulated board's fault), asked while the link waits so
    a fault ends the wait at once."""
    return st.diagnosis


def check_outputs(link: Any, artifact: Artifact, samples: Path, count: int,
                  untimed: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext) -> AccuracyCheck | None:
    """Run ``count`` held-out inputs on the device and compare with the numpy reference.

    The first input runs as measurements do; the others inside ``untimed()`` (a faster scope a
    simulated board offers; nothing on a real one). The first one shows whether the timed run
    computes what the untimed ones do: it is counted like the others and kept as ``timed_agrees``."""
    if count == 0 or not samples.exists():
        return None
    from harness.codegen.io import encode_input, raw_output
    from harness.codegen.reference import quantize_tensor, run_raw

    with np.load(samples) as npz:
        x, y = npz["x"][:count], npz["y"][:count]
    graph = artifact.graph
    # the host's answers for all inputs in one batch (the same exact arithmetic, input by input)
    hosts = np.asarray(run_raw(graph, quantize_tensor(graph.numeric, graph.tensor(graph.inputs[0]), x)))
    classes: list[int] = []
    exact = 0

    def run(i: int) -> None:
        nonlocal exact
        link.load_input(encode_input(graph, x[i]))
        link.infer(1, 0, 0)
        dev = raw_output(graph, link.results())
        classes.append(int(np.argmax(dev)))
        exact += bool(np.array_equal(dev.reshape(-1), hosts[i].reshape(-1)))

    run(0)
    with untimed():  # one scope for the rest
        for i in range(1, len(x)):
            run(i)
    host_classes = np.argmax(hosts.reshape(len(x), -1), axis=1)
    agree = int(np.sum(np.asarray(classes) == host_classes))
    correct = int(np.sum(np.asarray(classes) == y.astype(np.int64)))
    timed_agrees = classes[0] == int(host_classes[0])
    n = len(x)
    return AccuracyCheck(n, 100.0 * correct / n, 100.0 * agree / n, 100.0 * exact / n, timed_agrees)


def measure_repetitions(bench: Bench, st: Station, link: Any, reps: list[int], warmup: int,
                        store_one: Callable[[int, Any, Any, Any], None]) -> None:
    """Measure each missing repetition as its own triggered window and store it at once. A
    broken monitor connection is healed (reconnect, re-identify, supply re-applied) and the
    repetition in flight is taken again; nothing else of the configuration is repeated."""
    from harness.instruments.measure import MeasureSettings, calibrate_latency, measure_inferences

    pa = bench.power_up(st)
    # The inference that sizes the record is unmeasured, so it is the first of the ``warmup``
    # ones (a cold cache only makes it longer: the record stays large enough).
    calib = link.infer(1, max(0, warmup - 1), IDLE_GAP_US)
    trigger = st.dut.trigger_pin if any(s.needs_monitor for s in st.sources) else None
    lat = calib.latencies_s()[0]
    tint0 = bench.rig.power_analyzer.sample_interval_s
    if lat is None and pa is not None:  # a 24-bit SysTick wrapped: the inference is long; time it on the monitor
        with st.monitor_lock:
            lat = _healing(bench, st, lambda: calibrate_latency(
                pa, link, st.board.clock_hz, MeasureSettings(warmup=0, gap_us=IDLE_GAP_US, sample_interval_s=tint0),
                trigger))
    # the rig's interval, coarsened only when a long inference would not fit the digitizer
    tint = max(tint0, 2.0 * lat / 400_000) if lat is not None else tint0
    settings = MeasureSettings(n=1, warmup=0, gap_us=IDLE_GAP_US, sample_interval_s=tint,
                               expected_latency_s=lat, cross_check_tolerance=bench.rig.cross_check_tolerance)
    records: list[Any] = []  # the raw record of the repetition in hand (none on a latency-only rig)

    def one() -> Any:
        records.clear()
        (m,) = measure_inferences(st.monitor, link, st.board.clock_hz, st.sources, settings, trigger_pin=trigger,
                                  on_record=lambda _i, wf, _m: records.append(wf))
        return m

    for rep in reps:
        with st.monitor_lock:  # one measurement window at a time per mainframe (harness.campaign.arbiter)
            m = _healing(bench, st, one)
        store_one(rep, m, calib, records[0] if records else None)


HEAL_ATTEMPTS = 3


def _healing(bench: Bench, st: Station, step: Callable[[], Any]) -> Any:
    """Run ``step``; on a broken monitor connection heal it and run the step again."""
    for attempt in range(HEAL_ATTEMPTS + 1):
        try:
            return step()
        except Exception as exc:
            if attempt == HEAL_ATTEMPTS or not bench.heal(st, exc):
                raise
    raise AssertionError("unreachable")
