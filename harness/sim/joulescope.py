"""Simulated Joulescope (JS220) behind the interface of ``pyjoulescope_driver.Driver``: device
paths, open/close, publish/query of settings and subscriptions to the streamed signals. The real
driver reaches the instrument over USB, which cannot exist here, so the harness's Joulescope
driver is given this class instead (rig option ``driver``); everything above the Driver object
is the same code. Topics and the streamed message layout follow pyjoulescope_driver
(``record.py``'s signal table and ``binding.pyx``'s stream dicts: float32 ``data`` for current
and voltage, 1-bit GPI packed 8 per byte, LSB first).

Fed by one simulated board's SignalBus: current (0 while the current range is 'off', i.e. the
DUT disconnected), the external supply's voltage, and the board's GPIO on GPI ``gpio_input``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from harness.sim.signals import SignalBus

BASE_RATE_HZ = 1_000_000  # JS220 stream rate; lower h/fs values are decimated from it
CHUNK_SAMPLES = 512  # per message; a multiple of 8 so packed GPI bytes stay whole
_DEVICES: dict[str, SimJoulescope] = {}
_LOCK = threading.Lock()

Callback = Callable[[str, Any], None]


class SimJoulescope:
    """One simulated JS220 measuring ``bus``'s board; ``address`` is its device path."""

    _count = 0

    def __init__(self, bus: SignalBus, supply_v: float, gpio_input: int = 0):
        if not 0 <= gpio_input <= 3:
            raise ValueError("Joulescope GPI inputs are 0-3")
        with _LOCK:
            SimJoulescope._count += 1
            self.serial = f"SIM{SimJoulescope._count:03d}"
        self.bus, self.supply_v, self.gpio_input = bus, supply_v, gpio_input
        self.address = f"u/js220/{self.serial}"
        self.options = {"driver": "harness.sim.joulescope:SimJsDriver"}
        self.settings: dict[str, Any] = {"h/fs": BASE_RATE_HZ, "s/i/range/mode": "off", "s/v/range/mode": "auto"}
        self.subscribers: dict[str, list[Callback]] = {}
        self.calls: list[tuple[Any, ...]] = []  # every Driver call addressed to this device, in order
        self.is_open = False
        self._stop = threading.Event()
        self._streaming = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._stream, daemon=True, name=f"sim-js220-{self.serial}")

    def start(self) -> SimJoulescope:
        with _LOCK:
            _DEVICES[self.address] = self
        self._thread.start()
        return self

    def stop(self) -> None:
        with _LOCK:
            _DEVICES.pop(self.address, None)
        self._stop.set()
        self._streaming.set()
        self._thread.join(timeout=2)

    # -- what the Driver calls ------------------------------------------------------------
    def publish(self, sub: str, value: Any) -> None:
        with self._lock:
            self.settings[sub] = value
            streaming = any(v for k, v in self.settings.items() if k.endswith("/ctrl") and k.startswith("s/"))
        if streaming:
            self._streaming.set()
        else:
            self._streaming.clear()

    def _emit(self, sub: str, value: dict[str, Any]) -> None:
        with self._lock:
            fns = list(self.subscribers.get(sub, ()))
        for fn in fns:
            fn(f"{self.address}/{sub}", value)

    # -- stream ---------------------------------------------------------------------------
    def _level_at(self, times: np.ndarray) -> np.ndarray:
        edges = self.bus.edges(0.0)
        if not edges:
            return np.zeros(len(times), dtype=np.uint8)
        t = np.array([e.time_s for e in edges])
        lv = np.array([e.level for e in edges], dtype=np.uint8)
        idx = np.searchsorted(t, times, side="right") - 1
        return np.where(idx >= 0, lv[np.clip(idx, 0, None)], 0).astype(np.uint8)

    def _caught_up(self, end: float) -> bool:
        return self.bus.now_s >= end or self._stop.is_set() or not self._streaming.is_set()

    def _stream(self) -> None:
        while not self._stop.is_set():
            self._streaming.wait()
            if self._stop.is_set():
                return
            fs = int(self.settings.get("h/fs", BASE_RATE_HZ))
            decimate = max(1, BASE_RATE_HZ // fs)
            tint = decimate / BASE_RATE_HZ
            first = int(np.ceil(self.bus.now_s / tint))  # sample ids count on the board's time axis
            t0, k = first * tint, 0
            while self._streaming.is_set() and not self._stop.is_set():
                end = t0 + (k + CHUNK_SAMPLES) * tint
                connected = self.settings.get("s/i/range/mode") != "off"
                if connected:
                    with self.bus.changed:  # follow the board's time; never ask it to jump ahead
                        if not self.bus.changed.wait_for(partial(self._caught_up, end), timeout=0.2):
                            continue
                elif self._stop.wait(CHUNK_SAMPLES * tint):  # DUT disconnected: the stream runs on the wall clock
                    break
                if not self._streaming.is_set() or self._stop.is_set():
                    break
                starts = t0 + tint * np.arange(k, k + CHUNK_SAMPLES)
                connected = self.settings.get("s/i/range/mode") != "off"
                current = self.bus.mean_current(starts, starts + tint) if connected else np.zeros(CHUNK_SAMPLES)
                base = {"sample_id": (first + k) * decimate, "field_id": 0, "index": 0, "sample_rate": BASE_RATE_HZ,
                        "decimate_factor": decimate, "utc": 0,
                        "time_map": {"offset_time": 0, "offset_counter": 0, "counter_rate": float(BASE_RATE_HZ)}}
                if self.settings.get("s/i/ctrl"):
                    self._emit("s/i/!data", {**base, "data": current.astype(np.float32)})
                if self.settings.get("s/v/ctrl"):
                    self._emit("s/v/!data", {**base, "data": np.full(CHUNK_SAMPLES, self.supply_v, np.float32)})
                for n in range(4):
                    if self.settings.get(f"s/gpi/{n}/ctrl"):
                        bits = self._level_at(starts + tint / 2) if n == self.gpio_input else np.zeros(
                            CHUNK_SAMPLES, np.uint8)
                        self._emit(f"s/gpi/{n}/!data", {**base, "data": np.packbits(bits, bitorder="little")})
                k += CHUNK_SAMPLES


class SimJsDriver:
    """The subset of ``pyjoulescope_driver.Driver`` the harness uses, over the simulated
    Joulescopes of this process. Each device records the calls addressed to it (``calls``)."""

    simulated = True

    def _device(self, topic: str, *call: Any) -> tuple[SimJoulescope, str]:
        parts = topic.split("/")
        path, sub = "/".join(parts[:3]), "/".join(parts[3:])
        with _LOCK:
            dev = _DEVICES.get(path)
        if dev is None:
            raise RuntimeError(f"device {path} not found")
        dev.calls.append(call)
        return dev, sub

    def device_paths(self, timeout: float | None = None) -> list[str]:
        with _LOCK:
            return sorted(_DEVICES)

    def open(self, device_prefix: str, mode: str | None = None, timeout: float | None = None) -> None:
        dev, _ = self._device(device_prefix, "open", device_prefix, mode)
        dev.is_open = True

    def close(self, device_prefix: str, timeout: float | None = None) -> None:
        dev, _ = self._device(device_prefix, "close", device_prefix)
        dev.is_open = False

    def publish(self, topic: str, value: Any, timeout: float | None = None) -> None:
        dev, sub = self._device(topic, "publish", topic, value)
        dev.publish(sub, value)

    def query(self, topic: str, timeout: float | None = None) -> Any:
        dev, sub = self._device(topic, "query", topic)
        return dev.settings.get(sub)

    def subscribe(self, topic: str, flags: Any, fn: Callback, timeout: float | None = None) -> None:
        dev, sub = self._device(topic, "subscribe", topic, flags)
        with dev._lock:
            dev.subscribers.setdefault(sub, []).append(fn)

    def unsubscribe(self, topic: str, fn: Callback, timeout: float | None = None) -> None:
        dev, sub = self._device(topic, "unsubscribe", topic)
        with dev._lock:
            if fn in dev.subscribers.get(sub, []):
                dev.subscribers[sub].remove(fn)

    def finalize(self, timeout: float | None = None) -> None:
        """Nothing to release in-process."""
