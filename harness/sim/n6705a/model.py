"""State and SCPI command set of the simulated N6705A mainframe (independent of the transport).

``execute(line)`` runs one program message and returns the response bytes (None when the
message has no query). Errors go to the error queue with the instrument's codes, never to the
caller. Commands that wait (FETC) release the model lock while waiting, so other connections
keep working."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from harness.sim.n6705a.acquisition import AcqState, Acquisition, Sampler, TriggerSpec
from harness.sim.n6705a.elog import Elog, ElogSettings
from harness.sim.n6705a.modules import ModuleSpec, module_spec, quantise_interval
from harness.sim.n6705a.scpi import (
    CommandTree,
    ScpiError,
    format_float,
    ieee_block,
    illegal_value,
    out_of_range,
    parse_bool,
    parse_channel_list,
    parse_choice,
    parse_number,
    settings_conflict,
    split_message,
)
from harness.sim.signals import SignalBus

ERROR_QUEUE_DEPTH = 30
OPER_CV, OPER_OFF, OPER_WTG_MEAS, OPER_MEAS_ACTIVE = 1, 4, 8, 32
QUES_OV = 1


@dataclass
class ChannelState:
    """Programmable settings of one output; ``reset`` restores the *RST values."""

    spec: ModuleSpec
    bus: SignalBus | None = None
    volt: float = 0.0
    curr: float = 0.0
    prot: float = 0.0
    output: bool = False
    ov_tripped: bool = False
    func_curr: bool = True
    func_volt: bool = True
    tint_req: float = 20.48e-6
    points: int = 1024
    offset: int = 0
    trig_source: str = "BUS"
    acq: Acquisition | None = None
    elog_settings: ElogSettings = field(default_factory=ElogSettings)
    elog: Elog | None = None

    def reset(self) -> None:
        if self.acq:
            self.acq.abort()
        self.volt, self.curr, self.prot = 0.0, self.spec.i_max * 0.02, self.spec.ovp_max
        self.output = self.ov_tripped = False
        self.func_curr, self.func_volt = True, False
        self.tint_req, self.points, self.offset, self.trig_source = 20.48e-6, 1024, 0, "BUS"
        self.acq, self.elog, self.elog_settings = None, None, ElogSettings()

    @property
    def n_params(self) -> int:
        return int(self.func_curr) + int(self.func_volt)

    @property
    def tint(self) -> float:
        return quantise_interval(self.spec, self.tint_req, self.n_params)


SIMULATED_MANUFACTURER = "SIMULATED Agilent Technologies (mcu-bench-harness)"


class N6705AModel:
    """The mainframe: up to four channels, digital port pins, error queue, data format."""

    def __init__(self, model: str = "N6705B", serial: str = "MY56000001", firmware: str = "D.01.08",
                 noise_a: float = 0.0, drop_ohm: float = 0.0, fetch_timeout_s: float = 5.0,
                 elog_fifo_s: float = 20.0):
        # says it is simulated in its first field, so every log, provenance row and report shows it
        self.idn = f"{SIMULATED_MANUFACTURER},{model},{serial},{firmware}"
        self.noise_a, self.drop_ohm = noise_a, drop_ohm
        self._rng = np.random.default_rng(0)  # one stream: successive records get fresh noise
        self.fetch_timeout_s, self.elog_fifo_s = fetch_timeout_s, elog_fifo_s
        self.cond = threading.Condition()
        self.channels: dict[int, ChannelState] = {}
        self.pin_bus: dict[int, SignalBus] = {}
        self.pin_func: dict[int, str] = dict.fromkeys(range(1, 8), "DIO")
        self.pin_pos: dict[int, bool] = dict.fromkeys(range(1, 8), True)
        self.errors: list[ScpiError] = []
        self.form_real, self.swap = False, False
        self.tree = CommandTree()
        self._register()

    # -- wiring (harness side, not SCPI) ---------------------------------------------------
    def attach(self, channel: int, bus: SignalBus | None, module: str) -> None:
        if not 1 <= channel <= 4:
            raise ValueError("N6705 channels are 1-4")
        with self.cond:
            ch = ChannelState(module_spec(module), bus)
            ch.reset()
            self.channels[channel] = ch

    def wire_pin(self, pin: int, bus: SignalBus) -> None:
        if not 1 <= pin <= 7:
            raise ValueError("N6705 digital port pins are 1-7")
        with self.cond:
            self.pin_bus[pin] = bus

    # -- execution -------------------------------------------------------------------------
    def execute(self, line: str) -> bytes | None:
        responses: list[bytes] = []
        with self.cond:
            try:
                units = split_message(line)
            except ScpiError as exc:
                self._push(exc)
                return None
            for header, params in units:
                try:
                    handler, suffixes = self.tree.lookup(header)
                    result = handler(params, suffixes)
                except ScpiError as exc:
                    self._push(exc)
                    continue
                if result is not None:
                    responses.append(result if isinstance(result, bytes) else result.encode())
        return b";".join(responses) + b"\n" if responses else None

    def _push(self, exc: ScpiError) -> None:
        if len(self.errors) >= ERROR_QUEUE_DEPTH:
            self.errors[-1] = ScpiError(-350, "Error queue overflow")
        else:
            self.errors.append(exc)

    # -- helpers ---------------------------------------------------------------------------
    def _chans(self, params: list[str], default_all: bool = False) -> tuple[list[str], list[ChannelState]]:
        """Split a trailing channel list off ``params``; (@1) by default."""
        if params and params[-1].lstrip().startswith("("):
            numbers = parse_channel_list(params[-1])
            params = params[:-1]
        else:
            numbers = sorted(self.channels) if default_all else [1]
        for n in numbers:
            if n not in self.channels:
                raise out_of_range(f"channel {n} not installed")
        return params, [self.channels[n] for n in numbers]

    def _one(self, params: list[str], what: str) -> str:
        if len(params) < 1:
            raise ScpiError(-109, f"Missing parameter;{what}")
        if len(params) > 1:
            raise ScpiError(-108, f"Parameter not allowed;{what}")
        return params[0]

    def _array(self, values: np.ndarray) -> str | bytes:
        if self.form_real:
            dtype = "<f4" if self.swap else ">f4"
            return ieee_block(np.asarray(values, dtype=dtype).tobytes())
        return ",".join(format_float(v) for v in values)

    def _values(self, values: list[float]) -> str:
        return ",".join(format_float(v) for v in values)

    def _add(self, pattern: str, handler, query: bool = False) -> None:
        self.tree.add(pattern, handler, query)

    # -- command set -----------------------------------------------------------------------
    def _register(self) -> None:
        a = self._add
        a("*IDN", lambda p, s: self.idn, query=True)
        a("*RST", self._rst)
        a("*CLS", self._cls)
        a("*OPC", lambda p, s: "1", query=True)
        a("*OPC", lambda p, s: None)
        a("*WAI", lambda p, s: None)
        a("*ESR", lambda p, s: "+0", query=True)
        a("*TRG", self._trg)
        a("SYSTem:ERRor[:NEXT]", self._err, query=True)
        a("SYSTem:VERSion", lambda p, s: "1999.0", query=True)
        a("SYSTem:CHANnel[:COUNt]", lambda p, s: f"+{len(self.channels)}", query=True)
        a("SYSTem:CHANnel:MODel", self._chan_model, query=True)
        src = "[SOURce:]"
        a(src + "VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._volt)
        a(src + "VOLTage[:LEVel][:IMMediate][:AMPLitude]", self._volt_q, query=True)
        a(src + "CURRent[:LEVel][:IMMediate][:AMPLitude]", self._curr)
        a(src + "CURRent[:LEVel][:IMMediate][:AMPLitude]", self._curr_q, query=True)
        a(src + "CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]", self._curr)
        a(src + "CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]", self._curr_q, query=True)
        a(src + "VOLTage:PROTection[:LEVel]", self._prot)
        a(src + "VOLTage:PROTection[:LEVel]", self._prot_q, query=True)
        a("OUTPut[:STATe]", self._outp)
        a("OUTPut[:STATe]", self._outp_q, query=True)
        a("OUTPut:PROTection:CLEar", self._prot_clear)
        a("MEASure[:SCALar]:VOLTage[:DC]", lambda p, s: self._meas(p, "v"), query=True)
        a("MEASure[:SCALar]:CURRent[:DC]", lambda p, s: self._meas(p, "i"), query=True)
        a("MEASure:ARRay:CURRent[:DC]", lambda p, s: self._meas_array(p, "i"), query=True)
        a("MEASure:ARRay:VOLTage[:DC]", lambda p, s: self._meas_array(p, "v"), query=True)
        a("FORMat[:DATA]", self._form)
        a("FORMat[:DATA]", lambda p, s: "REAL" if self.form_real else "ASC", query=True)
        a("FORMat:BORDer", self._bord)
        a("FORMat:BORDer", lambda p, s: "SWAP" if self.swap else "NORM", query=True)
        a("[SENSe:]FUNCtion:CURRent", lambda p, s: self._func(p, "curr"))
        a("[SENSe:]FUNCtion:VOLTage", lambda p, s: self._func(p, "volt"))
        a("[SENSe:]FUNCtion:CURRent", lambda p, s: self._func_q(p, "curr"), query=True)
        a("[SENSe:]FUNCtion:VOLTage", lambda p, s: self._func_q(p, "volt"), query=True)
        a("[SENSe:]SWEep:TINTerval", self._tint)
        a("[SENSe:]SWEep:TINTerval", self._tint_q, query=True)
        a("[SENSe:]SWEep:POINts", self._points)
        a("[SENSe:]SWEep:POINts", self._points_q, query=True)
        a("[SENSe:]SWEep:OFFSet:POINts", self._offset)
        a("[SENSe:]SWEep:OFFSet:POINts", self._offset_q, query=True)
        a("TRIGger:ACQuire:SOURce", self._trig_source)
        a("TRIGger:ACQuire:SOURce", self._trig_source_q, query=True)
        a("TRIGger:ACQuire[:IMMediate]", self._trig_acq)
        a("INITiate[:IMMediate]:ACQuire", self._init_acq)
        a("ABORt:ACQuire", self._abort_acq)
        a("FETCh:ARRay:CURRent[:DC]", lambda p, s: self._fetch(p, "i", True), query=True)
        a("FETCh:ARRay:VOLTage[:DC]", lambda p, s: self._fetch(p, "v", True), query=True)
        a("FETCh[:SCALar]:CURRent[:DC]", lambda p, s: self._fetch(p, "i", False), query=True)
        a("FETCh[:SCALar]:VOLTage[:DC]", lambda p, s: self._fetch(p, "v", False), query=True)
        a("STATus:OPERation:CONDition", self._oper_cond, query=True)
        a("STATus:QUEStionable:CONDition", self._ques_cond, query=True)
        a("DIGital:PIN#:FUNCtion", self._pin_func)
        a("DIGital:PIN#:FUNCtion", lambda p, s: self._pin_func_q(s), query=True)
        a("DIGital:PIN#:POLarity", self._pin_pol)
        a("DIGital:PIN#:POLarity", lambda p, s: "POS" if self.pin_pos[s[0]] else "NEG", query=True)
        a("[SENSe:]ELOG:FUNCtion:CURRent", lambda p, s: self._elog_func(p, "curr"))
        a("[SENSe:]ELOG:FUNCtion:CURRent:MINMax", lambda p, s: self._elog_func(p, "curr_minmax"))
        a("[SENSe:]ELOG:FUNCtion:VOLTage", lambda p, s: self._elog_func(p, "volt"))
        a("[SENSe:]ELOG:FUNCtion:VOLTage:MINMax", lambda p, s: self._elog_func(p, "volt_minmax"))
        a("[SENSe:]ELOG:PERiod", self._elog_per)
        a("[SENSe:]ELOG:PERiod", self._elog_per_q, query=True)
        a("TRIGger:ELOG:SOURce", self._elog_source)
        a("TRIGger:ELOG[:IMMediate]", self._elog_trig)
        a("INITiate[:IMMediate]:ELOG", self._elog_init)
        a("ABORt:ELOG", self._elog_abort)
        a("FETCh:ELOG", self._elog_fetch, query=True)

    # common
    def _rst(self, p, s) -> None:
        for ch in self.channels.values():
            ch.reset()
            if ch.bus is not None:
                ch.bus.powered = False
        self.form_real, self.swap = False, False
        self.pin_func = dict.fromkeys(range(1, 8), "DIO")
        self.pin_pos = dict.fromkeys(range(1, 8), True)

    def _cls(self, p, s) -> None:
        self.errors.clear()

    def _err(self, p, s) -> str:
        if not self.errors:
            return '+0,"No error"'
        return str(self.errors.pop(0))

    def _chan_model(self, p, s) -> str:
        _, chans = self._chans(p)
        return ",".join(ch.spec.model for ch in chans)

    # source
    def _volt(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            ch.volt = parse_number(self._one(p, "VOLT"), 0.0, ch.spec.v_max, 0.0, "VOLT")
            self._check_ovp(ch)

    def _volt_q(self, p, s) -> str:
        p, chans = self._chans(p)
        return self._values([self._query_limit(p, 0.0, ch.spec.v_max, ch.volt) for ch in chans])

    def _query_limit(self, p: list[str], lo: float, hi: float, value: float) -> float:
        if p:
            return parse_number(p[0], lo, hi, value, "query")
        return value

    def _curr(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            ch.curr = parse_number(self._one(p, "CURR"), 0.0, ch.spec.i_max, ch.spec.i_max * 0.02, "CURR")

    def _curr_q(self, p, s) -> str:
        p, chans = self._chans(p)
        return self._values([self._query_limit(p, 0.0, ch.spec.i_max, ch.curr) for ch in chans])

    def _prot(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            ch.prot = parse_number(self._one(p, "VOLT:PROT"), 0.0, ch.spec.ovp_max, ch.spec.ovp_max, "VOLT:PROT")
            self._check_ovp(ch)

    def _prot_q(self, p, s) -> str:
        p, chans = self._chans(p)
        return self._values([self._query_limit(p, 0.0, ch.spec.ovp_max, ch.prot) for ch in chans])

    def _check_ovp(self, ch: ChannelState) -> None:
        """Over-voltage protection trips (output off, latched) if the setting exceeds the level."""
        if ch.output and ch.volt > ch.prot:
            ch.output, ch.ov_tripped = False, True
            if ch.bus is not None:
                ch.bus.powered = False

    def _outp(self, p, s) -> None:
        p, chans = self._chans(p)
        on = parse_bool(self._one(p, "OUTP"), "OUTP")
        for ch in chans:
            if on and ch.ov_tripped:
                raise settings_conflict("output protection tripped; send OUTP:PROT:CLE")
            ch.output = on
            if ch.bus is not None:
                ch.bus.powered = on
            self._check_ovp(ch)

    def _outp_q(self, p, s) -> str:
        _, chans = self._chans(p)
        return ",".join("1" if ch.output else "0" for ch in chans)

    def _prot_clear(self, p, s) -> None:
        _, chans = self._chans(p)
        for ch in chans:
            ch.ov_tripped = False

    # simple readings: mean over the last 1024 x 20.48 us of history (no new acquisition)
    def _meas(self, p, kind: str) -> str:
        _, chans = self._chans(p)
        out = []
        for ch in chans:
            current, voltage = self._sampler(ch).sample(self._now(ch) - 1024 * 20.48e-6, 1024 * 20.48e-6, 1)
            out.append(float((current if kind == "i" else voltage)[0]))
        return self._values(out)

    def _meas_array(self, p, kind: str) -> str | bytes:
        _, chans = self._chans(p)
        if len(chans) != 1:
            raise illegal_value("MEAS:ARR takes one channel")
        ch = chans[0]
        self._start_acq(ch, TriggerSpec("IMM"))
        return self._fetch(p, kind, True)

    def _now(self, ch: ChannelState) -> float:
        return ch.bus.now_s if ch.bus is not None else 0.0

    def _sampler(self, ch: ChannelState) -> Sampler:
        return Sampler(ch.bus, lambda: ch.volt, lambda: ch.output, self.drop_ohm, self.noise_a, self._rng)

    # format
    def _form(self, p, s) -> None:
        choice = parse_choice(self._one(p, "FORM"), {"ASCii": "ASC", "REAL": "REAL"}, "FORM")
        self.form_real = choice == "REAL"

    def _bord(self, p, s) -> None:
        self.swap = parse_choice(self._one(p, "FORM:BORD"), {"NORMal": "N", "SWAPped": "S"}, "BORD") == "S"

    # digitizer settings
    def _func(self, p, attr: str) -> None:
        p, chans = self._chans(p)
        on = parse_bool(self._one(p, "SENS:FUNC"), "SENS:FUNC")
        for ch in chans:
            setattr(ch, f"func_{attr}", on)

    def _func_q(self, p, attr: str) -> str:
        _, chans = self._chans(p)
        return ",".join("1" if getattr(ch, f"func_{attr}") else "0" for ch in chans)

    def _tint(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            finest = quantise_interval(ch.spec, 0.0, ch.n_params)
            ch.tint_req = parse_number(self._one(p, "TINT"), finest, 40000.0, 20.48e-6, "SENS:SWE:TINT")

    def _tint_q(self, p, s) -> str:
        p, chans = self._chans(p)
        out = []
        for ch in chans:
            finest = quantise_interval(ch.spec, 0.0, ch.n_params)
            value = parse_number(p[0], finest, 40000.0, 20.48e-6, "query") if p else ch.tint_req
            out.append(quantise_interval(ch.spec, value, ch.n_params))
        return self._values(out)

    def _points(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            ch.points = int(parse_number(self._one(p, "POIN"), 1, ch.spec.max_points, 1024, "SENS:SWE:POIN"))

    def _points_q(self, p, s) -> str:
        p, chans = self._chans(p)
        return ",".join(
            f"+{int(self._query_limit(p, 1, ch.spec.max_points, ch.points))}" for ch in chans
        )

    def _offset(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            value = int(parse_number(self._one(p, "OFFS:POIN"), -(ch.spec.max_points - 1), 2e9, 0, "OFFS"))
            if value < -(ch.points - 1):
                raise out_of_range("SENS:SWE:OFFS:POIN more pre-trigger points than SENS:SWE:POIN")
            ch.offset = value

    def _offset_q(self, p, s) -> str:
        _, chans = self._chans(p)
        return ",".join(f"{ch.offset:+d}" for ch in chans)

    # triggering and acquisition
    def _parse_source(self, text: str) -> str:
        word = text.strip().upper()
        if word in ("BUS", "IMM", "IMMEDIATE", "EXT", "EXTERNAL"):
            return {"IMMEDIATE": "IMM", "EXTERNAL": "EXT"}.get(word, word)
        if word.startswith("PIN") and word[3:].isdigit() and 1 <= int(word[3:]) <= 7:
            return word
        raise illegal_value(f"trigger source {text}")

    def _trig_source(self, p, s) -> None:
        p, chans = self._chans(p)
        source = self._parse_source(self._one(p, "TRIG:ACQ:SOUR"))
        if source in ("IMM", "EXT"):
            raise illegal_value(f"trigger source {source} not simulated")
        for ch in chans:
            ch.trig_source = source

    def _trig_source_q(self, p, s) -> str:
        _, chans = self._chans(p)
        return ",".join(ch.trig_source for ch in chans)

    def _trigger_spec(self, source: str, what: str) -> TriggerSpec:
        if source.startswith("PIN"):
            pin = int(source[3:])
            if self.pin_func[pin] != "TINP":
                raise settings_conflict(f"{what} source {source} but DIG:PIN{pin}:FUNC is not TINP")
            return TriggerSpec(source, self.pin_bus.get(pin), self.pin_pos[pin])
        return TriggerSpec(source)

    def _start_acq(self, ch: ChannelState, trigger: TriggerSpec) -> None:
        if ch.acq is not None:
            ch.acq.abort()
        ch.acq = Acquisition(self.cond, self._sampler(ch), trigger, ch.tint, ch.points, ch.offset)

    def _init_acq(self, p, s) -> None:
        _, chans = self._chans(p)
        for ch in chans:
            if ch.acq is not None and ch.acq.state in (AcqState.WAITING, AcqState.ACQUIRING):
                raise ScpiError(-213, "Init ignored")
            self._start_acq(ch, self._trigger_spec(ch.trig_source, "TRIG:ACQ"))

    def _trig_acq(self, p, s) -> None:
        _, chans = self._chans(p, default_all=True)
        for ch in chans:
            if ch.acq is not None:
                ch.acq.bus_trigger()

    def _trg(self, p, s) -> None:
        self._trig_acq(["(@" + ",".join(map(str, self.channels)) + ")"] if self.channels else [], s)
        for ch in self.channels.values():
            if ch.elog is not None and ch.elog.settings.source == "BUS":
                ch.elog.trigger_now(self._now(ch))

    def _abort_acq(self, p, s) -> None:
        _, chans = self._chans(p)
        for ch in chans:
            if ch.acq is not None:
                ch.acq.abort()
                ch.acq = None

    def _fetch(self, p, kind: str, array: bool) -> str | bytes:
        _, chans = self._chans(p)
        if len(chans) != 1:
            raise illegal_value("FETC takes one channel")
        ch = chans[0]
        acq = ch.acq
        if acq is None:
            raise ScpiError(-230, "Data corrupt or stale;no acquisition initiated")
        if acq.state is AcqState.WAITING and acq.trigger.source == "BUS" and not acq.bus_triggered:
            raise ScpiError(-214, "Trigger deadlock")
        if not self.cond.wait_for(lambda: acq.state is AcqState.DONE or acq.aborted, timeout=self.fetch_timeout_s):
            raise ScpiError(-214, "Trigger deadlock;acquisition did not complete before the fetch timeout")
        if acq.state is not AcqState.DONE:
            raise ScpiError(-230, "Data corrupt or stale;acquisition aborted")
        if (kind == "i" and not ch.func_curr) or (kind == "v" and not ch.func_volt):
            raise settings_conflict(f"{'current' if kind == 'i' else 'voltage'} was not measured")
        data = acq.current if kind == "i" else acq.voltage
        if array:
            return self._array(data)
        return format_float(float(data.mean()))

    def _oper_cond(self, p, s) -> str:
        _, chans = self._chans(p, default_all=True)
        bits = 0
        for ch in chans:
            bits |= OPER_CV if ch.output else OPER_OFF
            if ch.acq is not None and ch.acq.state is AcqState.WAITING:
                bits |= OPER_WTG_MEAS | OPER_MEAS_ACTIVE
            elif ch.acq is not None and ch.acq.state is AcqState.ACQUIRING:
                bits |= OPER_MEAS_ACTIVE
        return f"+{bits}"

    def _ques_cond(self, p, s) -> str:
        _, chans = self._chans(p, default_all=True)
        return f"+{QUES_OV if any(ch.ov_tripped for ch in chans) else 0}"

    # digital port
    def _pin_func(self, p, s) -> None:
        pin = self._pin(s)
        choices = {"DIO": "DIO", "DINPut": "DINP", "TOUTput": "TOUT", "TINPut": "TINP", "FAULt": "FAUL",
                   "INHibit": "INH", "ONCouple": "ONC", "OFFCouple": "OFFC"}
        self.pin_func[pin] = parse_choice(self._one(p, "DIG:PIN:FUNC"), choices, "DIG:PIN:FUNC")

    def _pin_func_q(self, s) -> str:
        return self.pin_func[self._pin(s)]

    def _pin_pol(self, p, s) -> None:
        pin = self._pin(s)
        self.pin_pos[pin] = parse_choice(self._one(p, "DIG:PIN:POL"), {"POSitive": "P", "NEGative": "N"},
                                         "DIG:PIN:POL") == "P"

    def _pin(self, s: list[int]) -> int:
        pin = s[0] if s else 1
        if not 1 <= pin <= 7:
            raise ScpiError(-114, "Header suffix out of range")
        return pin

    # data logger
    def _elog_func(self, p, attr: str) -> None:
        p, chans = self._chans(p)
        on = parse_bool(self._one(p, "ELOG:FUNC"), "ELOG:FUNC")
        for ch in chans:
            setattr(ch.elog_settings, attr, on)

    def _elog_per(self, p, s) -> None:
        p, chans = self._chans(p)
        for ch in chans:
            es = ch.elog_settings
            n_params = int(es.curr or es.curr_minmax) + int(es.volt or es.volt_minmax)
            finest = 102.4e-6 * max(1, n_params)
            es.period_s = parse_number(self._one(p, "ELOG:PER"), finest, 60.0, 0.1, "SENS:ELOG:PER")

    def _elog_per_q(self, p, s) -> str:
        _, chans = self._chans(p)
        return self._values([ch.elog_settings.period_s for ch in chans])

    def _elog_source(self, p, s) -> None:
        p, chans = self._chans(p)
        source = self._parse_source(self._one(p, "TRIG:ELOG:SOUR"))
        if source == "EXT":
            raise illegal_value("trigger source EXT not simulated")
        for ch in chans:
            ch.elog_settings.source = source

    def _elog_init(self, p, s) -> None:
        _, chans = self._chans(p)
        for ch in chans:
            es = ch.elog_settings
            trig = self._trigger_spec(es.source, "TRIG:ELOG")
            elog = Elog(ElogSettings(**vars(es)), self._sampler(ch), self.elog_fifo_s, trig.pin_bus,
                        t_arm=self._now(ch))
            if es.source == "IMM":
                elog.trigger_now(self._now(ch))
            ch.elog = elog

    def _elog_trig(self, p, s) -> None:
        _, chans = self._chans(p)
        for ch in chans:
            if ch.elog is not None and ch.elog.settings.source == "BUS":
                ch.elog.trigger_now(self._now(ch))

    def _elog_abort(self, p, s) -> None:
        _, chans = self._chans(p)
        for ch in chans:
            if ch.elog is not None:
                ch.elog.running = False

    def _elog_fetch(self, p, s) -> str | bytes:
        p, chans = self._chans(p)
        if len(chans) != 1:
            raise illegal_value("FETC:ELOG takes one channel")
        ch = chans[0]
        if ch.elog is None:
            raise ScpiError(-230, "Data corrupt or stale;data logger not initiated")
        count = int(parse_number(self._one(p, "FETC:ELOG"), 1, 1_000_000, 1000, "FETC:ELOG"))
        values, lost = ch.elog.fetch(count, self._now(ch))
        if lost:
            self._push(ScpiError(-230, f"Data corrupt or stale;ELOG FIFO overflow, {lost} records lost"))
        return self._array(values)
