"""Grammar of the benchmark protocol (docs/protocol.md): command strings and parsers for the
reply lines. Pure functions, no I/O, so they are testable without a device."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TERMINATOR = "%"
READY = "m-ready"
CRC_PREFIX = "m-crc="
PROTOCOL_VERSION = 2
DB_CHUNK_BYTES = 128  # the most the firmware accepts per "db" command (300-char command buffer); each is a round trip

_KV = re.compile(r"^m-([a-z0-9-]+)=(.*)$")
_CRC = re.compile(r"^m-crc=([0-9a-f]{8})$")
_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,9})$")
_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_RESULTS_HEX = re.compile(r"^(?:[0-9a-f]{2}){1,32}$")
COUNTERS = ("dwt", "systick", "ticker")
NUMERICS = ("float32", "uint8", "int8", "qmn")
# Plausible ranges of identify's numbers: a value outside is a corrupted or foreign reply.
_RANGES = {
    "input-bytes": (1, 1 << 26),
    "output-bytes": (1, 1 << 26),
    "output-count": (1, 1 << 24),
    "arena-bytes": (0, 1 << 28),
    "counter-hz": (1, 4_000_000_000),
    "counter-overhead": (0, 100_000),
    "max-laps": (1, 65_535),
}
_LAP = re.compile(r"^m-lap-(\d+)=(\d+|wrapped),([0-9a-f]{8})$")


@dataclass(frozen=True)
class DutInfo:
    """What the firmware says about itself (reply to ``identify%``)."""

    protocol: int
    board: str
    model: str
    model_hash: str
    build_id: str
    numeric: str
    input_bytes: int
    output_bytes: int
    output_count: int
    arena_bytes: int
    counter: str  # "dwt" | "systick" | "ticker"
    counter_hz: int
    counter_overhead: int  # ticks of an empty start/read pair, included in every lap
    max_laps: int
    raw: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class InferResult:
    """Per measured inference: counter ticks (None when the 24-bit SysTick wrapped) and the
    CRC-32 of the output bytes."""

    cycles: list[int | None]
    checksums: list[int]
    warmup: int
    gap_us: int
    counter: str
    counter_hz: int
    counter_overhead: int

    @property
    def checksum(self) -> int:
        return self.checksums[0]

    @property
    def deterministic(self) -> bool:
        """Every measured inference produced the same output."""
        return len(set(self.checksums)) == 1

    @property
    def wrapped(self) -> bool:
        return any(c is None for c in self.cycles)

    def latencies_s(self) -> list[float | None]:
        """Lap durations in seconds with the constant counter overhead removed."""
        return [
            None if c is None else max(c - self.counter_overhead, 0) / self.counter_hz for c in self.cycles
        ]


def identify_cmd() -> str:
    return "identify%"


def db_load_cmd(n: int) -> str:
    return f"db load {n}%"


def db_chunk_cmd(chunk: bytes) -> str:
    return f"db {chunk.hex()}%"


def infer_cmd(n: int, warmup: int, gap_us: int) -> str:
    return f"infer {n} {warmup} {gap_us}%"


def results_cmd() -> str:
    return "results%"


def key_values(lines: list[str]) -> dict[str, str]:
    """``m-key=value`` lines as a dict (later keys win); other lines are ignored."""
    out: dict[str, str] = {}
    for line in lines:
        m = _KV.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def parse_crc(line: str) -> int:
    """The checksum of an ``m-crc=xxxxxxxx`` line, or -1 when the line is malformed."""
    m = _CRC.match(line)
    return int(m.group(1), 16) if m else -1


def parse_identify(lines: list[str]) -> DutInfo:
    """Every field checked: present once, decimal digits only, within range, known words."""
    keys = [m.group(1) for line in lines if (m := _KV.match(line))]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"identify reply repeats {', '.join(dup)}")
    kv = key_values(lines)
    ints = (
        "protocol",
        "input-bytes",
        "output-bytes",
        "output-count",
        "arena-bytes",
        "counter-hz",
        "counter-overhead",
        "max-laps",
    )
    strs = ("board", "model", "model-hash", "build", "numeric", "counter")
    missing = [k for k in (*ints, *strs) if k not in kv]
    if missing:
        raise ValueError(f"identify reply lacks {', '.join(missing)}")
    bad = [f"{k}={kv[k]!r}" for k in ints if not _DECIMAL.match(kv[k])]
    if bad:
        raise ValueError(f"identify reply has non-decimal field(s): {', '.join(bad)}")
    n = {k: int(kv[k]) for k in ints}
    if n["protocol"] != PROTOCOL_VERSION:
        raise ValueError(f"firmware speaks protocol {n['protocol']}, this host speaks {PROTOCOL_VERSION}")
    problems = [f"{k}={n[k]} outside {lo}..{hi}" for k, (lo, hi) in _RANGES.items() if not lo <= n[k] <= hi]
    if n["output-count"] > n["output-bytes"]:
        problems.append(f"output-count={n['output-count']} exceeds output-bytes={n['output-bytes']}")
    if not _NAME.match(kv["board"]):
        problems.append(f"board={kv['board']!r} is not a board name")
    if not _NAME.match(kv["model"]):
        problems.append(f"model={kv['model']!r} is not a model name")
    for key in ("model-hash", "build"):  # a content hash, or any version / `git describe` token
        if not _TOKEN.match(kv[key]):
            problems.append(f"{key}={kv[key]!r} is not a version token (1-64 of A-Z a-z 0-9 _ . + -)")
    if kv["numeric"] not in NUMERICS:
        problems.append(f"numeric={kv['numeric']!r} not one of {', '.join(NUMERICS)}")
    if kv["counter"] not in COUNTERS:
        problems.append(f"counter={kv['counter']!r} not one of {', '.join(COUNTERS)}")
    if problems:
        raise ValueError("identify reply has implausible field(s): " + "; ".join(problems))
    return DutInfo(
        protocol=n["protocol"],
        board=kv["board"],
        model=kv["model"],
        model_hash=kv["model-hash"],
        build_id=kv["build"],
        numeric=kv["numeric"],
        input_bytes=n["input-bytes"],
        output_bytes=n["output-bytes"],
        output_count=n["output-count"],
        arena_bytes=n["arena-bytes"],
        counter=kv["counter"],
        counter_hz=n["counter-hz"],
        counter_overhead=n["counter-overhead"],
        max_laps=n["max-laps"],
        raw=kv,
    )


def parse_laps(lines: list[str], n: int) -> tuple[list[int | None], list[int]]:
    """Lap lines of one ``infer`` reply -> (ticks or None, crc32); checks all n laps and
    ``m-infer-done=n`` are there."""
    laps: dict[int, tuple[int | None, int]] = {}
    for line in lines:
        m = _LAP.match(line)
        if m:
            i = int(m.group(1))
            if i in laps:
                raise ValueError(f"lap {i} reported twice")
            ticks = None if m.group(2) == "wrapped" else int(m.group(2))
            if ticks is not None and ticks >= 1 << 32:
                raise ValueError(f"lap {i} has {ticks} ticks, more than a 32-bit counter holds")
            laps[i] = (ticks, int(m.group(3), 16))
        elif line.startswith("m-lap-"):
            raise ValueError(f"malformed lap line {line!r}")
    done = key_values(lines).get("infer-done")
    if done != str(n):
        raise ValueError(f"expected m-infer-done={n}, got {done!r}")
    if sorted(laps) != list(range(n)):
        raise ValueError(f"expected laps 0..{n - 1}, got {sorted(laps)}")
    return [laps[i][0] for i in range(n)], [laps[i][1] for i in range(n)]


def parse_results(lines: list[str]) -> bytes:
    declared = key_values(lines).get("results-bytes")
    if declared is None:
        raise ValueError("results reply lacks m-results-bytes")
    if not _DECIMAL.match(declared):
        raise ValueError(f"m-results-bytes={declared!r} is not a decimal count")
    chunks = [line[len("m-results=") :] for line in lines if line.startswith("m-results=")]
    bad = [c for c in chunks if not _RESULTS_HEX.match(c)]
    if bad:
        raise ValueError(f"results line(s) not 1-32 bytes of lower-case hex: {bad[:3]}")
    data = b"".join(bytes.fromhex(c) for c in chunks)
    if len(data) != int(declared):
        raise ValueError(f"results declared {declared} bytes, carried {len(data)}")
    return data
