"""Grammar of the benchmark protocol (docs/protocol.md): command strings and parsers for the
reply lines. Pure functions, no I/O, so they are testable without a device."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TERMINATOR = "%"
READY = "m-ready"
PROTOCOL_VERSION = 1
DB_CHUNK_BYTES = 64  # firmware accepts up to 128 bytes per "db" command (300-char command buffer)

_KV = re.compile(r"^m-([a-z0-9-]+)=(.*)$")
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


def parse_identify(lines: list[str]) -> DutInfo:
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
    try:
        n = {k: int(kv[k]) for k in ints}
    except ValueError as exc:
        raise ValueError(f"identify reply has a non-numeric field: {exc}") from None
    if n["protocol"] != PROTOCOL_VERSION:
        raise ValueError(f"firmware speaks protocol {n['protocol']}, this host speaks {PROTOCOL_VERSION}")
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
            ticks = None if m.group(2) == "wrapped" else int(m.group(2))
            laps[int(m.group(1))] = (ticks, int(m.group(3), 16))
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
    data = b"".join(
        bytes.fromhex(line[len("m-results=") :]) for line in lines if line.startswith("m-results=")
    )
    if len(data) != int(declared):
        raise ValueError(f"results declared {declared} bytes, carried {len(data)}")
    return data
