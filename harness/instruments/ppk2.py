"""Nordic Power Profiler Kit II as a power monitor, through ``ppk2-api`` (Nordic's protocol as
that package implements it). Source-meter mode supplies the board (voltage from the board file,
refused above ``abs_max_v`` or the OVP level before anything is sent); ampere-meter mode measures
a board supplied elsewhere. The PPK2 streams current at 100 kS/s with its 8 logic inputs in
every sample, so the benchmark GPIO wired to a logic input is both the capture trigger and the
timing source (``digital-input``).

The PPK2 has no programmable current limit or OVP: the driver enforces the board's current
limit in software (output off and SafetyError when a record exceeds it) and refuses voltages
above the OVP level. Output off is confirmed by streaming and checking the current is gone."""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.config.board import SupplySettings
from harness.instruments.errors import InstrumentConnectionError, InstrumentError, SafetyError
from harness.instruments.protocols import CapturePlan, InstrumentIdentity, MonitorResource
from harness.instruments.reconnect import reopen_with_backoff
from harness.instruments.waveform import Waveform

LOG = logging.getLogger(__name__)
SAMPLE_INTERVAL_S = 1e-5  # 100 kS/s, fixed
VOLTAGE_RANGE_MV = (800, 5000)  # what the PPK2's regulator can source
OFF_CURRENT_A = 20e-6  # below this after "DUT power off", the output is taken as off
OFF_CHECK_S = 0.02
SAMPLE_BYTES = 4
READ_TIMEOUT_S = 0.05  # serial read timeout: how long the stream is quiet before it counts as drained


class Ppk2Monitor:
    """A PPK2 on one serial port (the board on its DUT connector). A PowerMonitor."""

    driver_name = "ppk2"

    def __init__(self, port: str, *, mode: str = "source", timeout_s: float = 10.0):
        if mode not in ("source", "ampere"):
            raise InstrumentError(f"ppk2 mode {mode!r}: allowed are 'source' and 'ampere'")
        self.port, self.mode, self.timeout_s = port, mode, timeout_s
        self.identity: InstrumentIdentity | None = None
        self.plan: CapturePlan | None = None
        self._api: Any = None
        self._supply: SupplySettings | None = None
        self._vset_v = 0.0
        self._output_on = False
        self._trigger_bit: int | None = None
        self._stream: _Stream | None = None
        self._bus_trigger_index: int | None = None
        self._open()

    @classmethod
    def check_address(cls, address: str) -> None:
        """A serial port: /dev/ttyACM1, /dev/serial/by-id/..., COM5."""
        if not re.fullmatch(r"(/dev/[\w./+:-]+|COM\d{1,3})", address):
            raise ValueError(f"{address!r} is not a serial port for the PPK2; e.g. /dev/ttyACM1, "
                             "/dev/serial/by-id/usb-Nordic_Semiconductor_PPK2_..., COM5")

    @classmethod
    def from_resource(cls, res: MonitorResource) -> Ppk2Monitor:
        return cls(res.address, mode=str(res.options.get("mode", "source")), timeout_s=res.timeout_ms / 1000)

    # -- connection ------------------------------------------------------------------------
    def _open(self) -> None:
        from ppk2_api.ppk2_api import PPK2_API

        try:
            self._api = PPK2_API(self.port, timeout=1, write_timeout=1)
        except Exception as exc:  # serial.SerialException, OSError
            raise InstrumentConnectionError(f"PPK2 at {self.port}: cannot open ({exc})") from exc
        self.identify()

    def identify(self) -> InstrumentIdentity:
        """Read the calibration metadata (GET_META_DATA) and keep it: it is the PPK2's identity."""
        from ppk2_api.ppk2_api import PPK2_Command

        api = self._api
        # get_modifiers() parses the metadata but drops its text; the identity needs both
        api._write_serial((PPK2_Command.GET_META_DATA,))
        text = api._read_metadata()
        if not text or not api._parse_metadata(text):
            raise InstrumentConnectionError(f"PPK2 at {self.port}: no calibration metadata (not a PPK2?)")
        fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
        self.identity = InstrumentIdentity(
            self.driver_name, "Nordic Semiconductor", "PPK2", fields.get("Serial", self.port),
            f"HW {fields.get('HW', '?')}", simulated="Simulated" in fields)
        return self.identity

    def reconnect(self, restore: bool = True) -> None:
        before = self.identity
        self._close_port()
        reopen_with_backoff(self._open)
        if before is not None and self.identity is not None and before.serial != self.identity.serial:
            raise InstrumentError(f"PPK2 at {self.port}: a different unit ({self.identity.serial}) answered")
        self.plan = None
        if restore and self._supply is not None and self._output_on:
            self.apply_supply(self._supply, self._vset_v, settle_s=0)

    def _close_port(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.ser.close()
            self._api = None

    def close(self) -> None:
        try:
            if self._api is not None:
                self.output_off()
        finally:
            self._close_port()

    def __enter__(self) -> Ppk2Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- supply ----------------------------------------------------------------------------
    def apply_supply(self, supply: SupplySettings, voltage_v: float | None = None, settle_s: float = 0.2) -> None:
        volt = supply.nominal_v if voltage_v is None else voltage_v
        if not math.isfinite(volt) or volt > supply.abs_max_v or volt > supply.ovp_v or volt <= 0:
            raise SafetyError(f"refusing {volt} V on the PPK2: the board allows at most {min(supply.abs_max_v, supply.ovp_v)}"
                              " V (abs_max_v / ovp_v); nothing was sent")
        mv = round(volt * 1000)
        if not VOLTAGE_RANGE_MV[0] <= mv <= VOLTAGE_RANGE_MV[1]:
            raise SafetyError(f"the PPK2 sources {VOLTAGE_RANGE_MV[0]}-{VOLTAGE_RANGE_MV[1]} mV, the board needs {mv} mV")
        api = self._api
        self._supply, self._vset_v = supply, volt
        if self.mode == "source":
            api.use_source_meter()
        else:
            api.use_ampere_meter()
        api.set_source_voltage(mv)  # ampere mode: the supply's voltage, used by the calibration
        api.toggle_DUT_power("ON")
        self._output_on = True
        if settle_s > 0:
            time.sleep(settle_s)

    def output_off(self) -> None:
        """DUT power off, then stream a moment and check the current is gone (the PPK2 has no
        state to read back; the current is the state)."""
        if self._api is None:
            raise InstrumentConnectionError(f"PPK2 at {self.port}: not connected")
        self._api.toggle_DUT_power("OFF")
        if self.mode == "ampere":
            self._output_on = False
            return  # the board's own supply feeds it: nothing of ours to confirm
        if not self._api.current_vdd:  # never switched on by us: ppk2_api's conversion still needs a rail voltage
            self._api.current_vdd = VOLTAGE_RANGE_MV[0]
        stream = self._start_stream()
        try:
            need = int(OFF_CHECK_S / SAMPLE_INTERVAL_S)
            if not stream.wait_for(lambda: stream.count() >= 2 * need, self.timeout_s):
                raise InstrumentError(f"PPK2 at {self.port}: output off not confirmed (no data)")
            current = stream.current_a()[need : 2 * need]  # skip the samples around the switch
        finally:
            self._stop_stream()
        if float(np.mean(current)) > OFF_CURRENT_A:
            raise InstrumentError(f"PPK2 at {self.port}: output still draws {np.mean(current) * 1e3:.3f} mA after off")
        self._output_on = False

    # -- capture ---------------------------------------------------------------------------
    def configure_acquisition(self, window_s: float, pretrigger_s: float, *, trigger_pin: int | None = None,
                              sample_interval_s: float | None = None, measure_voltage: bool = True) -> CapturePlan:
        """``trigger_pin`` n is logic input D(n-1) (the rig's pins count from 1)."""
        if trigger_pin is not None and not 1 <= trigger_pin <= 8:
            raise InstrumentError(f"PPK2 trigger_pin {trigger_pin}: the logic inputs are D0-D7 (trigger_pin 1-8)")
        pre = math.ceil(pretrigger_s / SAMPLE_INTERVAL_S)
        points = pre + math.ceil(window_s / SAMPLE_INTERVAL_S)
        self._trigger_bit = None if trigger_pin is None else trigger_pin - 1
        self.plan = CapturePlan(SAMPLE_INTERVAL_S, points, pre, "BUS" if trigger_pin is None else f"PIN{trigger_pin}")
        return self.plan

    def arm(self) -> None:
        plan = self._need_plan()
        stream = self._start_stream()
        self._bus_trigger_index = None
        if not stream.wait_for(lambda: stream.count() >= plan.pretrigger_points, self.timeout_s):
            raise InstrumentConnectionError(f"PPK2 at {self.port}: no samples arrive")

    def trigger(self) -> None:
        if self._stream is None:
            raise InstrumentError("arm() first")
        self._bus_trigger_index = self._stream.count()

    def abort(self) -> None:
        self._stop_stream()

    def fetch(self, timeout_s: float | None = None) -> Waveform:
        plan = self._need_plan()
        stream = self._stream
        if stream is None:
            raise InstrumentError("arm() first")
        found: list[int] = []

        def complete() -> bool:  # the trigger seen and the record after it filled (or the stream broke)
            k = self._trigger_index(stream, plan)
            if k is not None and stream.count() >= k + plan.points - plan.pretrigger_points:
                found.append(k)
                return True
            return stream.error is not None

        try:
            stream.wait_for(complete, timeout_s if timeout_s is not None else plan.duration_s + 10.0)
        finally:
            self._stop_stream()
        if stream.error is not None:
            raise InstrumentConnectionError(f"PPK2 at {self.port}: {stream.error}")
        if not found:
            raise InstrumentError(f"PPK2 at {self.port}: no trigger on {plan.trigger} within the timeout")
        k = found[0]
        lo = k - plan.pretrigger_points
        current = stream.current_a()[lo : lo + plan.points]
        logic = stream.logic()[lo : lo + plan.points]
        digital = ((logic >> self._trigger_bit) & 1).astype(bool) if self._trigger_bit is not None else None
        self._check_current_limit(current)
        return Waveform(current, np.full(len(current), self._vset_v), SAMPLE_INTERVAL_S,
                        -plan.pretrigger_points * SAMPLE_INTERVAL_S, voltage_measured=False, digital=digital)

    def _trigger_index(self, stream: _Stream, plan: CapturePlan) -> int | None:
        """Sample of the first rising edge on the trigger input once the pre-trigger part is
        recorded (earlier edges are ignored, as a triggered instrument does)."""
        if self._trigger_bit is None:
            return self._bus_trigger_index
        bits = (stream.logic() >> self._trigger_bit) & 1
        rises = np.flatnonzero(np.diff(bits) == 1) + 1
        rises = rises[rises >= plan.pretrigger_points]
        return int(rises[0]) if len(rises) else None

    def _check_current_limit(self, current: np.ndarray) -> None:
        if self._supply is not None and len(current) and float(np.max(current)) > self._supply.current_limit_a:
            with contextlib.suppress(Exception):
                self._api.toggle_DUT_power("OFF")
            self._output_on = False
            raise SafetyError(f"PPK2: the board drew {np.max(current) * 1e3:.1f} mA, above its current limit "
                              f"{self._supply.current_limit_a * 1e3:.1f} mA; output switched off")

    def _need_plan(self) -> CapturePlan:
        if self.plan is None:
            raise InstrumentError("configure_acquisition() first")
        return self.plan

    def _start_stream(self) -> _Stream:
        if self._api is None:
            raise InstrumentConnectionError(f"PPK2 at {self.port}: not connected")
        self._stop_stream()
        self._stream = _Stream(self._api)
        return self._stream

    def _stop_stream(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None


class _Stream:
    """AVERAGE_START, then a thread decoding the PPK2's samples with ppk2_api until ``stop()``
    (AVERAGE_STOP and the port drained, so the next stream starts on a sample boundary)."""

    def __init__(self, api: Any):
        self.api = api
        self.error: str | None = None
        self._current: list[np.ndarray] = []
        self._logic: list[np.ndarray] = []
        self._n = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition()  # notified with every decoded block
        self._stop = threading.Event()
        api.ser.timeout = READ_TIMEOUT_S  # a blocking read: the thread wakes when bytes arrive
        api.remainder = {"sequence": b"", "len": 0}
        api.rolling_avg = api.rolling_avg4 = api.prev_range = None
        api.start_measuring()
        self._thread = threading.Thread(target=self._run, daemon=True, name="ppk2-stream")
        self._thread.start()

    def _run(self) -> None:
        pending = b""
        while not self._stop.is_set():
            try:
                ser = self.api.ser
                pending += ser.read(max(SAMPLE_BYTES, ser.in_waiting))  # what is there, or wait for more
            except Exception as exc:
                self.error = f"stream broke: {exc}"
                with self._arrived:
                    self._arrived.notify_all()
                return
            whole = len(pending) // SAMPLE_BYTES * SAMPLE_BYTES  # ppk2_api decodes whole samples only
            if not whole:
                continue
            samples, bits = self.api.get_samples(pending[:whole])
            pending = pending[whole:]
            with self._lock:
                self._current.append(np.asarray(samples, dtype=float) * 1e-6)  # ppk2_api gives uA
                self._logic.append(np.asarray(bits, dtype=np.int64))
                self._n += len(samples)
            with self._arrived:
                self._arrived.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` holds (checked whenever samples arrive) or the timeout."""
        with self._arrived:
            return self._arrived.wait_for(predicate, timeout_s)

    def count(self) -> int:
        with self._lock:
            return self._n

    def current_a(self) -> np.ndarray:
        with self._lock:
            return np.concatenate(self._current) if self._current else np.zeros(0)

    def logic(self) -> np.ndarray:
        with self._lock:
            return np.concatenate(self._logic) if self._logic else np.zeros(0, dtype=np.int64)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self.api.stop_measuring()
            while self.api.ser.read(4096):  # drain what was in flight (the read times out when quiet)
                pass
