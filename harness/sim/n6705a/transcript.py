"""SCPI transcripts: what a host wrote to an instrument and what came back, one line each.

Format (UTF-8 text, so a change is a readable diff)::

    > VOLT 3.3,(@1)          host -> instrument (one program message)
    < +0,"No error"          instrument -> host, text response (without the newline)
    <# 0000803f0000...       instrument -> host, IEEE 488.2 block, payload in hex

Written by the simulated N6705A and by ``RecordingProxy`` (in front of a real instrument);
read by ``ReplayServer`` to play an instrument's answers back to the driver."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

HOST, TEXT, BLOCK = ">", "<", "<#"


@dataclass(frozen=True)
class Entry:
    kind: str  # HOST, TEXT or BLOCK
    data: bytes  # the message without its terminator; for BLOCK the payload only

    def line(self) -> str:
        if self.kind == BLOCK:
            return f"{BLOCK} {self.data.hex()}"
        return f"{self.kind} {self.data.decode('latin-1')}"

    @property
    def wire(self) -> bytes:
        """The bytes as sent on the socket (with '\\n' terminator)."""
        if self.kind == BLOCK:
            n = str(len(self.data))
            return f"#{len(n)}{n}".encode() + self.data + b"\n"
        return self.data + b"\n"


class Transcript:
    """Thread-safe list of entries."""

    def __init__(self, entries: list[Entry] | None = None):
        self._entries = list(entries or [])
        self._lock = threading.Lock()

    def add(self, kind: str, data: bytes) -> None:
        with self._lock:
            self._entries.append(Entry(kind, data))

    def add_response(self, wire: bytes) -> None:
        """Record a response as sent (terminator included); blocks are recognised by '#'."""
        body = wire[:-1] if wire.endswith(b"\n") else wire
        if body.startswith(b"#") and len(body) >= 2 and body[1:2].isdigit():
            n = int(body[1:2])
            length = int(body[2 : 2 + n] or b"0")
            self.add(BLOCK, body[2 + n : 2 + n + length])
        else:
            self.add(TEXT, body)

    @property
    def entries(self) -> list[Entry]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def commands(self) -> list[str]:
        return [e.data.decode("latin-1") for e in self.entries if e.kind == HOST]

    def dumps(self, commands_only: bool = False) -> str:
        return "".join(e.line() + "\n" for e in self.entries if not commands_only or e.kind == HOST)

    @classmethod
    def loads(cls, text: str) -> Transcript:
        entries = []
        for raw in text.splitlines():
            if not raw or raw.startswith("#"):
                continue
            if raw.startswith(BLOCK + " ") or raw == BLOCK:
                entries.append(Entry(BLOCK, bytes.fromhex(raw[3:].strip())))
            elif raw[:2] in (HOST + " ", TEXT + " "):
                entries.append(Entry(raw[0], raw[2:].encode("latin-1")))
            else:
                raise ValueError(f"bad transcript line: {raw!r}")
        return cls(entries)

    @classmethod
    def load(cls, path: str | Path) -> Transcript:
        return cls.loads(Path(path).read_text())
