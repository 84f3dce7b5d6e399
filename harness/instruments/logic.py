"""Logic analyzer as a timing source, through ``sigrok-cli`` and its VCD output: the capture
gives edge timestamps directly, which are turned into pulses (rising -> falling)."""

from __future__ import annotations

import re
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


def parse_vcd(text: str) -> Vcd:
    """Parse the subset of VCD that sigrok writes: $timescale, $var wire 1 <id> <name>,
    ``#<time>`` stamps and scalar changes ``0<id>``/``1<id>`` (x/z read as 0)."""
    m = re.search(r"\$timescale\s+(\d+)\s*([a-z]+)\s+\$end", text)
    if not m or m.group(2) not in _TIMESCALE:
        raise ValueError("VCD without a valid $timescale")
    scale = int(m.group(1)) * _TIMESCALE[m.group(2)]
    names = {code: name for code, name in re.findall(r"\$var\s+\w+\s+1\s+(\S+)\s+(\S+)(?:\s+\S+)?\s+\$end", text)}
    if not names:
        raise ValueError("VCD declares no 1-bit signals")
    body = text.split("$enddefinitions", 1)[-1].split("$end", 1)[-1]
    changes: dict[str, list[tuple[float, int]]] = {n: [] for n in names.values()}
    now = 0.0
    for token in body.split():
        if token.startswith("#"):
            now = int(token[1:]) * scale
        elif token[0] in "01xXzZ" and token[1:] in names:
            changes[names[token[1:]]].append((now, 1 if token[0] == "1" else 0))
        elif token.startswith("$"):
            continue
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
