"""Simulated Nordic Power Profiler Kit II on a pseudo-terminal: the real ``ppk2-api`` opens its
slave end as the PPK2's serial port and speaks the PPK2's own binary protocol to it (the
opcodes of ppk2_api.PPK2_Command). Fed by one simulated board's SignalBus: the supply current
as the PPK2's 100 kS/s stream of 4-byte samples (14-bit ADC code, auto-selected range, 8 logic
inputs), the board's benchmark GPIO on a logic input. It says it is simulated in its metadata.

Sample format (little-endian uint32, as ppk2_api decodes it): bits 0-13 ADC code, 14-16 the
measurement range, 24-31 the logic inputs D0-D7. ``current = code * 4 * (1.8 / 163840) / R[range]``
with the calibration sent as metadata (offsets 0, unit gains), so the host's conversion is exact
to the ADC's resolution."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import tty
from collections.abc import Callable
from functools import partial

import numpy as np

from harness.sim.signals import SignalBus

LOG = logging.getLogger(__name__)
SAMPLE_RATE_HZ = 100_000
RANGES_OHM = (1031.64, 101.65, 10.15, 0.94, 0.043)  # shunt per range, most sensitive first
ADC_LSB_V = 4 * 1.8 / 163840  # ppk2_api: code * 4 * adc_mult
CODE_MAX = (1 << 14) - 1
CHUNK_SAMPLES = 200  # 2 ms of stream per write
ARG_BYTES = {0x0D: 2, 0x0C: 1, 0x11: 1, 0x08: 1, 0x12: 1, 0x06: 0, 0x07: 0, 0x19: 0, 0x15: 0, 0x16: 0, 0x20: 0}
SIMULATED_TAG = "Simulated: mcu-bench-harness"


def metadata_text(serial: str) -> str:
    """The calibration block a PPK2 answers GET_META_DATA with, 'END' last."""
    lines = ["Calibrated: 0"]
    lines += [f"R{i}: {r}" for i, r in enumerate(RANGES_OHM)]
    for key, value in (("GS", 0), ("GI", 1), ("O", 0), ("S", 0), ("I", 0), ("UG", 1)):
        lines += [f"{key}{i}: {value}" for i in range(5)]
    lines += ["HW: 9173", "IA: 56", f"Serial: {serial}", SIMULATED_TAG, "END"]
    return "\n".join(lines) + "\n"


def encode_samples(current_a: np.ndarray, logic: np.ndarray) -> bytes:
    """4-byte PPK2 samples: per sample the most sensitive range that does not overflow."""
    codes = np.zeros(len(current_a), dtype=np.int64)
    ranges = np.full(len(current_a), len(RANGES_OHM) - 1, dtype=np.int64)
    todo = np.ones(len(current_a), dtype=bool)
    clipped = np.maximum(current_a, 0.0)
    for r, ohm in enumerate(RANGES_OHM):
        code = np.rint(clipped * ohm / ADC_LSB_V).astype(np.int64)
        fits = todo & (code <= CODE_MAX)
        codes[fits], ranges[fits] = code[fits], r
        todo &= ~fits
    codes[todo] = CODE_MAX
    words = (codes & CODE_MAX) | (ranges << 14) | (logic.astype(np.int64) << 24)
    return words.astype("<u4").tobytes()


class SimPpk2:
    """One simulated PPK2 supplying ``bus``'s board; ``address`` is the serial port to open."""

    def __init__(self, bus: SignalBus, gpio_input: int = 0, serial: str = "SIM-PPK2-0001"):
        if not 0 <= gpio_input <= 7:
            raise ValueError("PPK2 logic inputs are D0-D7")
        self.bus, self.gpio_input, self.serial = bus, gpio_input, serial
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.address = os.ttyname(self.slave)
        self.options: dict[str, str] = {}
        self.voltage_mv = 0
        self.mode = "source"
        self.dut_on = False
        self.commands: list[bytes] = []  # every command received, for tests and transcripts
        self.received = threading.Condition()  # notified after each command is recorded
        self._streaming = threading.Event()
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read_commands, daemon=True, name="sim-ppk2-cmd"),
                         threading.Thread(target=self._stream, daemon=True, name="sim-ppk2-stream")]

    def start(self) -> SimPpk2:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._streaming.clear()
        with self.bus.changed:
            self.bus.changed.notify_all()
        for t in self._threads:
            t.join(timeout=2)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- host -> PPK2 --------------------------------------------------------------------
    def _read_commands(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                return
            while buf:
                n = ARG_BYTES.get(buf[0])
                if n is None:
                    LOG.warning("simulated PPK2: unknown opcode 0x%02x, input dropped", buf[0])
                    buf = b""
                    break
                if len(buf) < 1 + n:
                    break
                cmd, buf = buf[: 1 + n], buf[1 + n :]
                self._execute(cmd)
                with self.received:
                    self.commands.append(cmd)
                    self.received.notify_all()

    def wait_for_commands(self, done: Callable[[list[bytes]], bool], timeout_s: float = 5.0) -> bool:
        """Wait until ``done(commands)`` holds: the host's writes return before this PPK2 has read them."""
        with self.received:
            return self.received.wait_for(lambda: done(self.commands), timeout_s)

    def _execute(self, cmd: bytes) -> None:
        op = cmd[0]
        if op == 0x19:
            self._write(metadata_text(self.serial).encode())
        elif op == 0x0D:  # REGULATOR_SET: inverse of ppk2_api._convert_source_voltage
            self.voltage_mv = (cmd[1] - 3) * 256 + cmd[2] + 800 - 32
        elif op == 0x0C:
            self.dut_on = bool(cmd[1])
        elif op == 0x11:
            self.mode = "ampere" if cmd[1] == 1 else "source"
        elif op == 0x06:
            self._streaming.set()
        elif op == 0x07:
            self._streaming.clear()

    def _write(self, data: bytes) -> None:
        with self._write_lock:
            view = memoryview(data)
            while view and not self._stop.is_set():
                _, ready, _ = select.select([], [self.master], [], 0.1)
                if ready:
                    try:
                        view = view[os.write(self.master, view) :]
                    except OSError:
                        return

    # -- PPK2 -> host --------------------------------------------------------------------
    def _level_at(self, times: np.ndarray) -> np.ndarray:
        edges = self.bus.edges(0.0)
        if not edges:
            return np.zeros(len(times), dtype=np.int64)
        t = np.array([e.time_s for e in edges])
        lv = np.array([e.level for e in edges], dtype=np.int64)
        idx = np.searchsorted(t, times, side="right") - 1
        return np.where(idx >= 0, lv[np.clip(idx, 0, None)], 0)

    def _caught_up(self, end: float) -> bool:
        return self.bus.now_s >= end or self._stop.is_set() or not self._streaming.is_set()

    def _stream(self) -> None:
        tint = 1.0 / SAMPLE_RATE_HZ
        while not self._stop.is_set():
            if not self._streaming.wait(0.1):
                continue
            t0, k = self.bus.now_s, 0
            while self._streaming.is_set() and not self._stop.is_set():
                end = t0 + (k + CHUNK_SAMPLES) * tint
                powered = self.dut_on or self.mode == "ampere"
                if not powered:  # nothing of the board flows: the stream runs on the wall clock
                    if self._stop.wait(CHUNK_SAMPLES * tint):
                        break
                    self._write(encode_samples(np.zeros(CHUNK_SAMPLES), np.zeros(CHUNK_SAMPLES, dtype=np.int64)))
                    k += CHUNK_SAMPLES
                    continue
                with self.bus.changed:  # follow the board's time; never ask it to jump ahead
                    if not self.bus.changed.wait_for(partial(self._caught_up, end), timeout=0.2):
                        continue
                if not self._streaming.is_set():
                    break
                starts = t0 + tint * np.arange(k, k + CHUNK_SAMPLES)
                current = self.bus.mean_current(starts, starts + tint)
                logic = self._level_at(starts + tint / 2) << self.gpio_input
                self._write(encode_samples(current, logic))
                k += CHUNK_SAMPLES
