"""Joulescope JS220 / JS110 as a power monitor, through ``pyjoulescope_driver``: current,
voltage and the general-purpose inputs streamed together, the benchmark GPIO on a GPI as
capture trigger and timing source (``digital-input``).

A Joulescope does not source power: it sits between the bench supply and the board. "Supply
on" therefore means: check the rail's voltage it measures is within the board file's limits
(refuse, leaving the DUT disconnected, when it is above ``abs_max_v`` or the OVP level), then
connect the current path (range 'auto'). "Off" opens the current path (range 'off'), confirmed
by reading the setting back. The board's current limit is enforced on every record.

Topics are pyjoulescope_driver's (``h/fs``, ``s/i/range/mode`` on the JS220, ``.../select`` on
the JS110, ``s/{i,v,gpi/N}/ctrl`` and ``!data``)."""

from __future__ import annotations

import contextlib
import math
import pkgutil
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

DEFAULT_DRIVER = "pyjoulescope_driver:Driver"
RATES_HZ = (1_000_000, 500_000, 200_000, 100_000, 50_000, 20_000, 10_000)  # h/fs values, JS220
VOLTAGE_CHECK_S = 0.005
VOLTAGE_TOLERANCE = 0.1  # the rail may be this far from nominal_v (relative) before we refuse


class JoulescopeMonitor:
    """One Joulescope (device path ``u/js220/<serial>``). A PowerMonitor."""

    driver_name = "joulescope"

    def __init__(self, device: str = "", *, driver: str = DEFAULT_DRIVER, timeout_s: float = 10.0):
        self.device_hint, self.driver_path, self.timeout_s = device, driver, timeout_s
        self.identity: InstrumentIdentity | None = None
        self.plan: CapturePlan | None = None
        self.path = ""
        self._drv: Any = None
        self._supply: SupplySettings | None = None
        self._vset_v = 0.0
        self._output_on = False
        self._gpi: int | None = None
        self._fs = RATES_HZ[0]
        self._capture: _Capture | None = None
        self._bus_index: int | None = None
        self._open()

    @classmethod
    def check_address(cls, address: str) -> None:
        """A device path (u/js220/000415), a serial number (000415), or '' for the only one attached."""
        if not re.fullmatch(r"(u/js(110|220)/)?\w{0,32}", address):
            raise ValueError(f"{address!r} is not a Joulescope device path; e.g. u/js220/000415, 000415, "
                             "or '' for the only one attached")

    @classmethod
    def from_resource(cls, res: MonitorResource) -> JoulescopeMonitor:
        return cls(res.address, driver=str(res.options.get("driver", DEFAULT_DRIVER)),
                   timeout_s=res.timeout_ms / 1000)

    # -- connection ------------------------------------------------------------------------
    def _open(self) -> None:
        cls = pkgutil.resolve_name(self.driver_path)
        try:
            self._drv = cls()
            paths = list(self._drv.device_paths())
        except Exception as exc:
            raise InstrumentConnectionError(f"Joulescope driver {self.driver_path}: {exc}") from exc
        if self.device_hint:
            match = [p for p in paths if p.lower() == self.device_hint.lower()
                     or p.lower().endswith("/" + self.device_hint.lower())]
        else:
            match = paths
        if len(match) != 1:
            self._finalize()
            raise InstrumentConnectionError(
                f"Joulescope {self.device_hint or '(any)'}: {'not found' if not match else 'ambiguous'} "
                f"(connected: {', '.join(paths) or 'none'}); plug it in or give its device path as resource")
        self.path = match[0]
        try:
            self._drv.open(self.path, "defaults")
        except Exception as exc:
            self._finalize()
            raise InstrumentConnectionError(f"Joulescope {self.path}: cannot open ({exc})") from exc
        self.identify()

    def identify(self) -> InstrumentIdentity:
        _, model, serial = self.path.split("/")
        if model not in ("js220", "js110"):
            raise InstrumentError(f"Joulescope {self.path}: model {model!r} is not a JS110/JS220")
        # a simulated Joulescope's Driver object says so (harness.sim.joulescope.SimJsDriver)
        self.identity = InstrumentIdentity(self.driver_name, "Jetperch", model.upper(), serial, "n/a",
                                           simulated=bool(getattr(self._drv, "simulated", False)))
        return self.identity

    @property
    def _range_topic(self) -> str:
        return f"{self.path}/s/i/range/{'mode' if '/js220/' in self.path else 'select'}"

    def reconnect(self, restore: bool = True) -> None:
        before = self.identity
        self._finalize()
        reopen_with_backoff(self._open)
        if before is not None and self.identity is not None and before.serial != self.identity.serial:
            raise InstrumentError(f"Joulescope: a different unit ({self.identity.serial}) answered")
        self.plan = None
        if restore and self._supply is not None and self._output_on:
            self.apply_supply(self._supply, self._vset_v, settle_s=0)

    def _finalize(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        if self._drv is not None:
            with contextlib.suppress(Exception):
                if self.path:
                    self._drv.close(self.path)
            with contextlib.suppress(Exception):
                self._drv.finalize()
            self._drv = None

    def close(self) -> None:
        try:
            if self._drv is not None:
                self.output_off()
        finally:
            self._finalize()

    def __enter__(self) -> JoulescopeMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- supply ----------------------------------------------------------------------------
    def apply_supply(self, supply: SupplySettings, voltage_v: float | None = None, settle_s: float = 0.2) -> None:
        """Measure the rail with the DUT disconnected; connect only if it is within limits."""
        want = supply.nominal_v if voltage_v is None else voltage_v
        self._drv.publish(self._range_topic, "off")
        cap = _Capture(self._drv, self.path, None)
        try:
            if not cap.wait_for(lambda: cap.count() >= VOLTAGE_CHECK_S * self._fs, self.timeout_s):
                raise InstrumentConnectionError(f"Joulescope {self.path}: no voltage samples")
            rail = float(np.mean(cap.arrays()[1]))
        finally:
            cap.stop()
        limit = min(supply.abs_max_v, supply.ovp_v)
        if not math.isfinite(rail) or rail > limit:
            raise SafetyError(f"Joulescope {self.path}: the supply rail is at {rail:.3f} V, above the board's "
                              f"{limit} V (abs_max_v / ovp_v); the board was left disconnected")
        if abs(rail - want) > VOLTAGE_TOLERANCE * want:
            raise SafetyError(f"Joulescope {self.path}: the supply rail is at {rail:.3f} V, the board needs {want} V; "
                              "set the bench supply (the board was left disconnected)")
        self._supply, self._vset_v = supply, rail
        self._drv.publish(self._range_topic, "auto")
        self._output_on = True
        if settle_s > 0:
            time.sleep(settle_s)

    def output_off(self) -> None:
        if self._drv is None:
            raise InstrumentConnectionError(f"Joulescope {self.path}: not connected")
        try:
            self._drv.publish(self._range_topic, "off")
            state = self._drv.query(self._range_topic)
        except Exception as exc:
            raise InstrumentConnectionError(f"Joulescope {self.path}: {exc}") from exc
        if str(state).lower() != "off":
            raise InstrumentError(f"Joulescope {self.path}: current range reads {state!r} after 'off'")
        self._output_on = False

    # -- capture ---------------------------------------------------------------------------
    def configure_acquisition(self, window_s: float, pretrigger_s: float, *, trigger_pin: int | None = None,
                              sample_interval_s: float | None = None, measure_voltage: bool = True) -> CapturePlan:
        """``trigger_pin`` n is GPI n-1 (the rig's pins count from 1); the rate is the slowest
        the Joulescope offers that still gives ``sample_interval_s`` or finer."""
        if trigger_pin is not None and not 1 <= trigger_pin <= 4:
            raise InstrumentError(f"Joulescope trigger_pin {trigger_pin}: the inputs are GPI 0-3 (trigger_pin 1-4)")
        want = sample_interval_s or 1.0 / RATES_HZ[0]
        self._fs = min((f for f in RATES_HZ if 1.0 / f <= want * (1 + 1e-9)), default=RATES_HZ[0])
        self._drv.publish(f"{self.path}/h/fs", self._fs)
        tint = 1.0 / self._fs
        pre = math.ceil(pretrigger_s / tint)
        points = pre + math.ceil(window_s / tint)
        self._gpi = None if trigger_pin is None else trigger_pin - 1
        self.plan = CapturePlan(tint, points, pre, "BUS" if trigger_pin is None else f"PIN{trigger_pin}")
        return self.plan

    def arm(self) -> None:
        plan = self._need_plan()
        self.abort()
        self._capture = _Capture(self._drv, self.path, self._gpi)
        self._bus_index = None
        cap = self._capture
        if not cap.wait_for(lambda: cap.count() >= plan.pretrigger_points, self.timeout_s):
            raise InstrumentConnectionError(f"Joulescope {self.path}: no samples arrive")

    def trigger(self) -> None:
        if self._capture is None:
            raise InstrumentError("arm() first")
        self._bus_index = self._capture.count()

    def abort(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None

    def fetch(self, timeout_s: float | None = None) -> Waveform:
        plan = self._need_plan()
        cap = self._capture
        if cap is None:
            raise InstrumentError("arm() first")
        found: list[int] = []

        def complete() -> bool:  # the trigger seen and the record after it filled
            k = self._trigger_index(cap, plan)
            if k is not None and cap.count() >= k + plan.points - plan.pretrigger_points:
                found.append(k)
                return True
            return False

        try:
            cap.wait_for(complete, timeout_s if timeout_s is not None else plan.duration_s + 10.0)
        finally:
            self.abort()
        if not found:
            raise InstrumentError(f"Joulescope {self.path}: no trigger on {plan.trigger} within the timeout")
        k = found[0]
        current, voltage, gpi = cap.arrays()
        lo = k - plan.pretrigger_points
        sl = slice(lo, lo + plan.points)
        if self._supply is not None and float(np.max(current[sl])) > self._supply.current_limit_a:
            with contextlib.suppress(Exception):
                self.output_off()
            raise SafetyError(f"Joulescope: the board drew {np.max(current[sl]) * 1e3:.1f} mA, above its current "
                              f"limit {self._supply.current_limit_a * 1e3:.1f} mA; DUT disconnected")
        return Waveform(current[sl].astype(float), voltage[sl].astype(float), plan.interval_s,
                        -plan.pretrigger_points * plan.interval_s, voltage_measured=True,
                        digital=None if gpi is None else gpi[sl].astype(bool))

    def _trigger_index(self, cap: _Capture, plan: CapturePlan) -> int | None:
        if self._gpi is None:
            return self._bus_index
        gpi = cap.arrays()[2]
        assert gpi is not None
        rises = np.flatnonzero(np.diff(gpi.astype(np.int8)) == 1) + 1
        rises = rises[rises >= plan.pretrigger_points]
        return int(rises[0]) if len(rises) else None

    def _need_plan(self) -> CapturePlan:
        if self.plan is None:
            raise InstrumentError("configure_acquisition() first")
        return self.plan


class _Capture:
    """Current, voltage (and one GPI) subscribed and streamed until ``stop()``; samples kept in
    step by their sample ids (the first common sample is index 0)."""

    def __init__(self, drv: Any, path: str, gpi: int | None):
        self.drv, self.path, self.gpi = drv, path, gpi
        self.signals = ["i", "v"] + ([f"gpi/{gpi}"] if gpi is not None else [])
        self._chunks: dict[str, list[tuple[int, np.ndarray]]] = {s: [] for s in self.signals}
        self._lock = threading.Lock()
        self._arrived = threading.Condition()  # notified with every data message
        self._fns: dict[str, Any] = {}
        for s in self.signals:
            fn = self._on_data_for(s)
            self._fns[s] = fn
            drv.subscribe(f"{path}/s/{s}/!data", ["pub"], fn)
        for s in self.signals:
            drv.publish(f"{path}/s/{s}/ctrl", 1)

    def _on_data_for(self, signal: str) -> Any:
        packed = signal.startswith("gpi")

        def on_data(topic: str, value: dict[str, Any]) -> None:
            data = np.asarray(value["data"])
            if packed:
                data = np.unpackbits(data.astype(np.uint8), bitorder="little")
            index = int(value["sample_id"]) // max(1, int(value["decimate_factor"]))
            with self._lock:
                self._chunks[signal].append((index, data))
            with self._arrived:
                self._arrived.notify_all()

        return on_data

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` holds (checked whenever data arrives) or the timeout."""
        with self._arrived:
            return self._arrived.wait_for(predicate, timeout_s)

    def _joined(self) -> dict[str, tuple[int, np.ndarray]]:
        with self._lock:
            chunks = {s: list(c) for s, c in self._chunks.items()}
        out = {}
        for s, cs in chunks.items():
            if not cs:
                return {}
            out[s] = (cs[0][0], np.concatenate([c for _, c in cs]))
        return out

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        joined = self._joined()
        if not joined:
            return np.zeros(0), np.zeros(0), (None if self.gpi is None else np.zeros(0, np.uint8))
        start = max(i0 for i0, _ in joined.values())
        end = min(i0 + len(a) for i0, a in joined.values())
        cut = {s: a[start - i0 : max(start, end) - i0] for s, (i0, a) in joined.items()}
        return cut["i"], cut["v"], cut.get(f"gpi/{self.gpi}")

    def count(self) -> int:
        return len(self.arrays()[0])

    def stop(self) -> None:
        for s in self.signals:
            with contextlib.suppress(Exception):
                self.drv.publish(f"{self.path}/s/{s}/ctrl", 0)
        for s in self.signals:
            with contextlib.suppress(Exception):
                self.drv.unsubscribe(f"{self.path}/s/{s}/!data", self._fns[s])
