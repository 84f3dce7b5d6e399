"""Driver for the Keysight/Agilent N6705A/B/C DC Power Analyzer (one output channel) over
PyVISA: safe supply setup from the board's limits, digitizer acquisitions triggered by a
digital-port pin wired to the board's benchmark GPIO (or by BUS), binary transfer, and the
data logger for long runs. Works unchanged with the simulated N6705A and a real one.

Safety: voltages above the board's ``abs_max_v`` are refused before anything is sent; the
output is switched off on every exit path (context manager, exceptions, Ctrl-C)."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config.board import SupplySettings
from harness.instruments.errors import InstrumentConnectionError, InstrumentError, SafetyError
from harness.instruments.protocols import CapturePlan, InstrumentIdentity, MonitorResource
from harness.instruments.safety import defer_sigint
from harness.instruments.visa import ScpiInstrument, open_resource
from harness.instruments.waveform import Waveform

MODELS = ("N6705A", "N6705B", "N6705C")
SIMULATED_MARK = "SIMULATED"  # the simulated N6705A says so in its *IDN? reply
RECONNECT_ATTEMPTS = 5
RECONNECT_BACKOFF_S = 0.2  # doubled after every failed attempt
STALE_REPLIES_SKIPPED = 10
OUTPUT_STATES = {b"0": False, b"1": True, b"OFF": False, b"ON": True}  # N6705 answers 0/1


Identity = InstrumentIdentity  # the name older callers use


@dataclass(frozen=True)
class AcquisitionPlan(CapturePlan):
    """The capture plan plus the transfer format; ``interval_s`` is the value read back."""

    measure_voltage: bool = True
    real_format: bool = True
    big_endian: bool = True


@dataclass(frozen=True)
class ElogData:
    """Data-logger records: one row per period, columns as named."""

    period_s: float
    columns: tuple[str, ...]
    values: np.ndarray  # shape (records, len(columns))


class N6705A:
    """One output channel of an N6705 mainframe (a PowerMonitor). Use as a context manager."""

    driver_name = "n6705a"

    def __init__(self, inst: ScpiInstrument, channel: int, *, big_endian: bool = True,
                 reopen: Callable[[], ScpiInstrument] | None = None):
        self.inst = inst
        self.channel = channel
        self.ch = f"(@{channel})"
        self.big_endian = big_endian
        self.identity: InstrumentIdentity | None = None
        self.plan: AcquisitionPlan | None = None
        self._supply: SupplySettings | None = None
        self._vset: float = 0.0
        self._output_on = False
        self._settle_s = 0.2
        self._reopen = reopen

    # -- connection ------------------------------------------------------------------------
    @classmethod
    def open(cls, resource: str, channel: int = 1, backend: str = "@py", timeout_ms: int = 10000,
             big_endian: bool = True) -> N6705A:
        def reopen() -> ScpiInstrument:
            return ScpiInstrument(open_resource(resource, backend, timeout_ms), f"N6705 at {resource}")

        inst = reopen()
        drv = cls(inst, channel, big_endian=big_endian, reopen=reopen)
        try:
            drv.identify()
        except BaseException:
            inst.close()
            raise
        return drv

    @classmethod
    def from_resource(cls, res: MonitorResource) -> N6705A:
        """Registry entry: ``res.address`` is a VISA resource, ``options['backend']`` its backend."""
        return cls.open(res.address, res.channel, str(res.options.get("backend", "@py")), res.timeout_ms)

    @classmethod
    def check_address(cls, address: str) -> None:
        """A VISA resource string (TCPIP0::<ip>::5025::SOCKET, USB0::0x0957::..., GPIB0::5::INSTR)
        with a sane host and port: the same check as every VISA address of a rig file."""
        from harness.config.endpoints import check_visa_resource

        check_visa_resource(address)

    def reconnect(self, restore: bool = True) -> None:
        """Close the broken session, reopen with backoff, check the same mainframe and module
        answer, and (``restore``) re-apply the last supply configuration, output state included."""
        if self._reopen is None:
            raise InstrumentConnectionError(f"{self.inst.name}: opened without an address; cannot reconnect")
        before = self.identity
        self.inst.close()
        delay, last = RECONNECT_BACKOFF_S, None
        for _ in range(RECONNECT_ATTEMPTS):
            try:
                self.inst = self._reopen()
                ident = self.identify()
                break
            except InstrumentConnectionError as exc:
                last = exc
                self.inst.close()
                time.sleep(delay)
                delay *= 2
        else:
            raise InstrumentConnectionError(f"reconnect failed after {RECONNECT_ATTEMPTS} attempts: {last}")
        if before is not None and (before.serial, before.model, before.module) != (ident.serial, ident.model,
                                                                                    ident.module):
            raise InstrumentError(f"{self.inst.name}: after reconnecting, {ident.text()} answered instead of "
                                  f"{before.text()}")
        self.plan = None  # the digitizer settings are re-sent by the next configure_acquisition()
        if restore and self._supply is not None and self._output_on:
            self.apply_supply(self._supply, self._vset, settle_s=self._settle_s)

    def identify(self) -> Identity:
        """Check *IDN? names an N6705A/B/C and that the channel holds a module; clear old errors."""
        idn = self.inst.query("*IDN?")
        parts = [p.strip() for p in idn.split(",")]
        if len(parts) < 4 or parts[1].upper() not in MODELS:
            raise InstrumentError(f"{self.inst.name}: *IDN? = {idn!r} is not an N6705A/B/C")
        stale = tuple(self.inst.errors())
        count = int(self.inst.query_float("SYST:CHAN?"))
        if not 1 <= self.channel <= count:  # a query on an empty slot gets no answer, only an error
            raise InstrumentError(f"{self.inst.name}: channel {self.channel} not installed ({count} channels)")
        module = self.inst.query(f"SYST:CHAN:MOD? {self.ch}")
        self.inst.check(f"SYST:CHAN:MOD? {self.ch}")
        if not module or module.upper() in ("EMPTY", "NONE"):
            raise InstrumentError(f"{self.inst.name}: no module in channel {self.channel} ({module!r})")
        self.identity = InstrumentIdentity(self.driver_name, parts[0], parts[1], parts[2], parts[3], module,
                                           simulated=SIMULATED_MARK in idn.upper(), stale_errors=stale)
        return self.identity

    @property
    def module(self) -> str:
        return self.identity.module if self.identity else ""

    def close(self) -> None:
        try:
            self.output_off()
        finally:
            self.inst.close()

    def __enter__(self) -> N6705A:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.output_off()
        except Exception as off_exc:
            if exc is None:
                raise
            exc.add_note(f"also failed to switch the output off: {off_exc}")
        finally:
            self.inst.close()

    # -- supply ----------------------------------------------------------------------------
    def apply_supply(self, supply: SupplySettings, voltage_v: float | None = None, settle_s: float = 0.2) -> None:
        """VOLT, CURR limit, VOLT:PROT, OUTP ON, settle; each step's errors checked.

        Refuses (SafetyError, nothing sent) any voltage or OVP level above ``abs_max_v``."""
        volt = supply.nominal_v if voltage_v is None else voltage_v
        for what, value in (("voltage", volt), ("OVP level", supply.ovp_v)):
            if not math.isfinite(value) or value > supply.abs_max_v or value < 0:
                raise SafetyError(
                    f"refusing {what} {value} V on channel {self.channel}: the board's abs_max_v is "
                    f"{supply.abs_max_v} V (nothing was sent to the instrument)"
                )
        if volt > supply.ovp_v:
            raise SafetyError(f"refusing voltage {volt} V above the OVP level {supply.ovp_v} V (output would trip)")
        self._supply, self._settle_s = supply, settle_s
        self.inst.write_checked(f"VOLT {volt:.6g},{self.ch}")
        self._vset = volt
        self.inst.write_checked(f"CURR {supply.current_limit_a:.6g},{self.ch}")
        self.inst.write_checked(f"VOLT:PROT {supply.ovp_v:.6g},{self.ch}")
        self.inst.write_checked(f"OUTP ON,{self.ch}")
        self._output_on = True
        if settle_s > 0:
            time.sleep(settle_s)
        if not self.output_is_on():
            ques = self.inst.query(f"STAT:QUES:COND? {self.ch}")
            raise InstrumentError(f"{self.inst.name}: output {self.channel} did not stay on (STAT:QUES:COND {ques})")

    def output_off(self) -> None:
        """Switch the output off and confirm it; Ctrl-C is held meanwhile. Replies left unread
        by an interrupted query are skipped while waiting for the confirmation."""
        with defer_sigint():
            self.inst.write(f"OUTP OFF,{self.ch}")
            self.inst.write(f"OUTP? {self.ch}")
            reply = b""
            for _ in range(STALE_REPLIES_SKIPPED):
                reply = self.inst.read_raw().strip()
                if reply.upper() in OUTPUT_STATES:
                    break
            if OUTPUT_STATES.get(reply.upper()) is not False:
                raise InstrumentError(f"{self.inst.name}: output {self.channel} did not switch off ({reply[:20]!r})")
            self._output_on = False

    def output_is_on(self) -> bool:
        reply = self.inst.query(f"OUTP? {self.ch}").upper().encode()
        if reply not in OUTPUT_STATES:
            raise InstrumentError(f"{self.inst.name}: OUTP? answered {reply!r}")
        return OUTPUT_STATES[reply]

    def measure_dc(self) -> tuple[float, float]:
        """(volts, amps) averaged by the instrument."""
        v = self.inst.query_float(f"MEAS:VOLT? {self.ch}")
        i = self.inst.query_float(f"MEAS:CURR? {self.ch}")
        return v, i

    # -- digitizer -------------------------------------------------------------------------
    def configure_acquisition(self, window_s: float, pretrigger_s: float, *, trigger_pin: int | None = None,
                              sample_interval_s: float | None = None, measure_voltage: bool = True,
                              binary: bool = True) -> AcquisitionPlan:
        """Set up one triggered record covering ``pretrigger_s`` before and ``window_s`` after the
        trigger, at the finest interval the module allows (or ``sample_interval_s`` if coarser)."""
        c = self.ch
        self.inst.write_checked(f"SENS:FUNC:CURR ON,{c}")
        if measure_voltage:
            try:
                self.inst.write_checked(f"SENS:FUNC:VOLT ON,{c}")
            except InstrumentError:
                measure_voltage = False  # module digitizes one parameter only
        if not measure_voltage:
            self.inst.write_checked(f"SENS:FUNC:VOLT OFF,{c}")
        finest = self.inst.query_float(f"SENS:SWE:TINT? MIN,{c}")
        max_points = int(self.inst.query_float(f"SENS:SWE:POIN? MAX,{c}"))
        total = window_s + pretrigger_s
        want = max(finest, sample_interval_s or 0.0, total / max_points)
        self.inst.write_checked(f"SENS:SWE:TINT {want:.6E},{c}")
        tint = self.inst.query_float(f"SENS:SWE:TINT? {c}")
        pre = math.ceil(pretrigger_s / tint)
        points = pre + math.ceil(window_s / tint)
        if points > max_points:
            raise InstrumentError(
                f"{self.inst.name}: {points} points exceed the digitizer's {max_points}; use the data logger (ELOG)"
            )
        self.inst.write_checked(f"SENS:SWE:POIN {points},{c}")
        self.inst.write_checked(f"SENS:SWE:OFFS:POIN {-pre},{c}")
        if trigger_pin is not None:
            self.inst.write_checked(f"DIG:PIN{trigger_pin}:FUNC TINP")
            self.inst.write_checked(f"DIG:PIN{trigger_pin}:POL POS")
            source = f"PIN{trigger_pin}"
        else:
            source = "BUS"
        self.inst.write_checked(f"TRIG:ACQ:SOUR {source},{c}")
        real = False
        if binary:
            try:
                self.inst.write_checked("FORM REAL")
                self.inst.write_checked(f"FORM:BORD {'NORM' if self.big_endian else 'SWAP'}")
                real = True
            except InstrumentError:
                real = False
        if not real:
            self.inst.write_checked("FORM ASC")
        self.plan = AcquisitionPlan(tint, points, pre, source, measure_voltage=measure_voltage, real_format=real,
                                    big_endian=self.big_endian)
        return self.plan

    def arm(self) -> None:
        """INIT:ACQ, then wait for the pre-trigger part to fill (earlier triggers are ignored)."""
        plan = self._need_plan()
        self.inst.write_checked(f"INIT:ACQ {self.ch}")
        time.sleep(plan.pretrigger_points * plan.interval_s * 1.2 + 0.005)

    def trigger(self) -> None:
        """Software (BUS) trigger."""
        self.inst.write_checked(f"TRIG:ACQ {self.ch}")

    def abort(self) -> None:
        self.inst.write_checked(f"ABOR:ACQ {self.ch}")

    def fetch(self, timeout_s: float | None = None) -> Waveform:
        """Wait for the record (FETC blocks on the instrument) and transfer it."""
        plan = self._need_plan()
        res = self.inst.res
        old = res.timeout
        res.timeout = max(old, 1000.0 * (timeout_s if timeout_s is not None else plan.duration_s + 10.0))
        try:
            current = self._fetch_array("CURR", plan)
            voltage = self._fetch_array("VOLT", plan) if plan.measure_voltage else None
        finally:
            with contextlib.suppress(Exception):  # a dead session has no timeout to restore
                res.timeout = old
        self.inst.check(f"FETC:ARR? {self.ch}")
        if len(current) != plan.points:
            raise InstrumentError(f"{self.inst.name}: fetched {len(current)} points, expected {plan.points}")
        measured = voltage is not None
        if voltage is None:
            voltage = np.full(len(current), self._vset)
        return Waveform(current, voltage, plan.interval_s, -plan.pretrigger_points * plan.interval_s,
                        voltage_measured=measured)

    def _fetch_array(self, what: str, plan: AcquisitionPlan) -> np.ndarray:
        cmd = f"FETC:ARR:{what}? {self.ch}"
        if not plan.real_format:
            return self.inst.query_ascii(cmd)
        try:
            return self.inst.query_block(cmd, plan.big_endian)
        except InstrumentConnectionError:
            raise
        except Exception as exc:
            self.inst.check(cmd)  # the instrument's own reason, if it gave one
            raise InstrumentError(f"{self.inst.name}: bad binary reply to {cmd}: {exc}") from exc

    def _need_plan(self) -> AcquisitionPlan:
        if self.plan is None:
            raise InstrumentError("configure_acquisition() first")
        return self.plan

    # -- data logger -----------------------------------------------------------------------
    def log(self, duration_s: float, period_s: float, *, minmax: bool = True, voltage: bool = False,
            trigger_pin: int | None = None, poll_s: float = 0.2, fetch_max: int = 10000) -> ElogData:
        """Record ``duration_s`` with the data logger, draining its FIFO every ``poll_s`` so it
        never overflows (the FIFO holds about 20 s [check])."""
        c = self.ch
        self.inst.write_checked(f"SENS:ELOG:FUNC:CURR ON,{c}")
        self.inst.write_checked(f"SENS:ELOG:FUNC:CURR:MINM {'ON' if minmax else 'OFF'},{c}")
        self.inst.write_checked(f"SENS:ELOG:FUNC:VOLT {'ON' if voltage else 'OFF'},{c}")
        self.inst.write_checked(f"SENS:ELOG:FUNC:VOLT:MINM {'ON' if voltage and minmax else 'OFF'},{c}")
        self.inst.write_checked(f"SENS:ELOG:PER {period_s:.6E},{c}")
        period = self.inst.query_float(f"SENS:ELOG:PER? {c}")
        if trigger_pin is not None:
            self.inst.write_checked(f"DIG:PIN{trigger_pin}:FUNC TINP")
            self.inst.write_checked(f"DIG:PIN{trigger_pin}:POL POS")
        self.inst.write_checked(f"TRIG:ELOG:SOUR {f'PIN{trigger_pin}' if trigger_pin else 'BUS'},{c}")
        self.inst.write_checked("FORM ASC")
        columns = ["curr_avg"] + (["curr_min", "curr_max"] if minmax else [])
        if voltage:
            columns += ["volt_avg"] + (["volt_min", "volt_max"] if minmax else [])
        wanted = round(duration_s / period)
        rows: list[np.ndarray] = []
        got = 0
        self.inst.write_checked(f"INIT:ELOG {c}")
        try:
            if trigger_pin is None:
                self.inst.write_checked(f"TRIG:ELOG {c}")
            deadline = time.monotonic() + duration_s * 3 + 10
            while got < wanted:
                if time.monotonic() > deadline:
                    raise InstrumentError(f"{self.inst.name}: data logger delivered {got}/{wanted} records")
                time.sleep(poll_s)
                flat = self.inst.query_ascii(f"FETC:ELOG? {min(fetch_max, wanted - got)},{c}")
                self.inst.check("FETC:ELOG?")
                if len(flat):
                    block = flat.reshape(-1, len(columns))
                    rows.append(block)
                    got += len(block)
        finally:
            self.inst.write(f"ABOR:ELOG {c}")
        values = np.concatenate(rows) if rows else np.zeros((0, len(columns)))
        return ElogData(period, tuple(columns), values)
