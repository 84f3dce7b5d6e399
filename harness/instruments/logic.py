"""Logic analyzer as a timing source, through ``sigrok-cli`` and its VCD output (read with pyvcd):
the capture gives edge timestamps directly, which are turned into pulses (rising -> falling)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.instruments.errors import InstrumentError
from harness.instruments.timing import Evidence, PulseTiming, TimingSource

_TIMESCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "fs": 1e-15}


@dataclass(frozen=True)
class Vcd:
    timescale_s: float
    names: dict[str, str]  # id code -> signal name
    changes: dict[str, list[tuple[float, int]]]  # signal name -> [(time_s, level)]


def parse_vcd(text: str | bytes) -> Vcd:
    """Read a VCD (as sigrok writes it) with pyvcd's tokenizer: the timescale, the 1-bit signals
    and their scalar changes in seconds (x/z read as 0). ValueError on a malformed file."""
    from vcd.reader import TokenKind, VCDParseError, tokenize

    data = text.encode() if isinstance(text, str) else text
    scale: float | None = None
    names: dict[str, str] = {}
    changes: dict[str, list[tuple[float, int]]] = {}
    now = 0
    try:
        for tok in tokenize(io.BytesIO(data)):
            if tok.kind is TokenKind.TIMESCALE:
                scale = int(tok.timescale.magnitude) * _TIMESCALE[tok.timescale.unit.value]
            elif tok.kind is TokenKind.VAR and tok.var.size == 1:
                names[tok.var.id_code] = tok.var.reference
                changes.setdefault(tok.var.reference, [])
            elif tok.kind is TokenKind.CHANGE_TIME:
                now = tok.time_change
            elif tok.kind is TokenKind.CHANGE_SCALAR and tok.scalar_change.id_code in names:
                if scale is None:
                    raise ValueError("VCD without a valid $timescale")
                level = 1 if tok.scalar_change.value == "1" else 0
                changes[names[tok.scalar_change.id_code]].append((now * scale, level))
    except VCDParseError as exc:
        raise ValueError(f"malformed VCD: {exc}") from None
    if scale is None:
        raise ValueError("VCD without a valid $timescale")
    if not names:
        raise ValueError("VCD declares no 1-bit signals")
    return Vcd(scale, names, changes)


def pulses(changes: list[tuple[float, int]], active_high: bool = True) -> list[tuple[float, float]]:
    """Complete pulses (start, end) from level changes; repeated levels are ignored, and a
    level present at time 0 is the initial state, not an edge."""
    on = 1 if active_high else 0
    out: list[tuple[float, float]] = []
    level: int | None = None
    start: float | None = None
    for t, v in changes:
        if v == level:
            continue
        if level is not None and v == on:
            start = t
        elif level is not None and start is not None:
            out.append((start, t))
            start = None
        level = v
    return out


def sigrok_command(driver: str, channel: str, samplerate_hz: int, duration_ms: int, output: Path,
                   trigger: bool = True) -> list[str]:
    cmd = ["sigrok-cli", "-d", driver, "--config", f"samplerate={samplerate_hz}", "-C", channel,
           "--time", str(duration_ms), "-O", "vcd", "-o", str(output)]
    if trigger:
        cmd += ["-t", f"{channel}=r", "-w"]
    return cmd


class LogicAnalyzerTiming(TimingSource):
    """One sigrok-cli capture per inference, started by ``arm()`` and finished by ``read()``."""

    name = "logic-analyzer"

    def __init__(self, driver: str = "fx2lafw", channel: str = "D0", samplerate_hz: int = 1_000_000,
                 duration_ms: int = 2000, active_high: bool = True):
        if shutil.which("sigrok-cli") is None:
            raise InstrumentError("sigrok-cli is not installed (Debian: apt-get install sigrok-cli)")
        self.driver, self.channel = driver, channel
        self.samplerate_hz, self.duration_ms, self.active_high = samplerate_hz, duration_ms, active_high
        self._dir = tempfile.TemporaryDirectory(prefix="harness-la-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._out = Path(self._dir.name) / "capture.vcd"

    def arm(self) -> None:
        self._out.unlink(missing_ok=True)
        cmd = sigrok_command(self.driver, self.channel, self.samplerate_hz, self.duration_ms, self._out)
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def read(self, evidence: Evidence) -> PulseTiming:
        if self._proc is None:
            raise InstrumentError("logic analyzer not armed")
        try:
            _, err = self._proc.communicate(timeout=self.duration_ms / 1000 + 10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            raise InstrumentError("sigrok-cli did not finish its capture") from None
        if self._proc.returncode != 0:
            raise InstrumentError(f"sigrok-cli failed: {err.decode(errors='replace').strip()}")
        vcd = parse_vcd(self._out.read_text())
        found = pulses(vcd.changes.get(self.channel, []), self.active_high)
        if not found:
            raise InstrumentError(f"no complete pulse on {self.channel} in the capture")
        start, end = found[0]
        return PulseTiming(self.name, end - start)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self._dir.cleanup()
