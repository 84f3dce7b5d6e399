"""Oscilloscope as a timing source: single-shot on the GPIO rising edge, then ask the scope for
the positive pulse width. Three command dialects; 9.9E+37 is every vendor's "no valid
measurement" and is never reported as a latency."""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.instruments.errors import InstrumentError
from harness.instruments.timing import Evidence, PulseTiming, TimingSource
from harness.instruments.visa import ScpiInstrument

INVALID = 9.9e37


@dataclass(frozen=True)
class ScopeDialect:
    default_channel: str
    setup: tuple[str, ...]  # once; {ch} is replaced by the channel
    arm: tuple[str, ...]  # before each pulse
    done_query: str  # answers ``done_reply`` once the single acquisition has stopped
    done_reply: str
    width_query: str


DIALECTS: dict[str, ScopeDialect] = {
    "keysight": ScopeDialect(
        "CHANnel1",
        (":TRIGger:MODE EDGE", ":TRIGger:EDGE:SOURce {ch}", ":TRIGger:EDGE:SLOPe POSitive"),
        (":SINGle",),
        ":OPERegister:CONDition?",  # bit 3 (8) = Run; 0 once the single shot is done
        "run-bit-clear",
        ":MEASure:PWIDth? {ch}",
    ),
    "rigol": ScopeDialect(
        "CHAN1",
        (":TRIGger:MODE EDGE", ":TRIGger:EDGE:SOURce {ch}", ":TRIGger:EDGE:SLOPe POSitive"),
        (":SINGle",),
        ":TRIGger:STATus?",
        "STOP",
        ":MEASure:ITEM? PWIDth,{ch}",
    ),
    "tektronix": ScopeDialect(
        "CH1",
        ("TRIGger:A:EDGE:SOUrce {ch}", "TRIGger:A:EDGE:SLOpe RISe", "MEASUrement:IMMed:SOUrce1 {ch}",
         "MEASUrement:IMMed:TYPe PWIdth", "ACQuire:STOPAfter SEQuence"),
        ("ACQuire:STATE RUN",),
        "ACQuire:STATE?",
        "0",
        "MEASUrement:IMMed:VALue?",
    ),
}


def _done(dialect: ScopeDialect, reply: str) -> bool:
    if dialect.done_reply == "run-bit-clear":
        return not int(float(reply)) & 8
    return reply.strip().upper() == dialect.done_reply


class ScopeTiming(TimingSource):
    """Pulse width from a VISA oscilloscope (Keysight InfiniiVision, Rigol DS/MSO, Tektronix)."""

    name = "scope"

    def __init__(self, inst: ScpiInstrument, dialect: str, channel: str | None = None, timeout_s: float = 5.0,
                 poll_s: float = 0.02):
        if dialect not in DIALECTS:
            raise ValueError(f"unknown scope dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        self.inst = inst
        self.dialect = DIALECTS[dialect]
        self.channel = channel or self.dialect.default_channel
        self.timeout_s, self.poll_s = timeout_s, poll_s
        for cmd in self.dialect.setup:
            self.inst.write(cmd.format(ch=self.channel))

    def arm(self) -> None:
        for cmd in self.dialect.arm:
            self.inst.write(cmd.format(ch=self.channel))

    def read(self, evidence: Evidence) -> PulseTiming:
        deadline = time.monotonic() + self.timeout_s
        while not _done(self.dialect, self.inst.query(self.dialect.done_query)):
            if time.monotonic() > deadline:
                raise InstrumentError(f"{self.inst.name}: the scope did not trigger on the GPIO pulse")
            time.sleep(self.poll_s)
        reply = self.inst.query(self.dialect.width_query.format(ch=self.channel))
        try:
            width = float(reply.split(",")[0])
        except ValueError:
            raise InstrumentError(f"{self.inst.name}: pulse width reply {reply!r} is not a number") from None
        if width >= INVALID * 0.99 or width <= 0:
            raise InstrumentError(f"{self.inst.name}: no valid pulse-width measurement ({reply})")
        return PulseTiming(self.name, width)

    def close(self) -> None:
        self.inst.close()
