"""Replay and record SCPI conversations at the socket, the boundary with a physical instrument.

``ReplayServer`` plays a recorded transcript back: it expects the host's messages byte for
byte, in order, and answers each with the recorded responses; anything else is a mismatch
(nothing is answered, so the client fails too). ``RecordingProxy`` sits between PyVISA and a
real instrument and writes the transcript that ``ReplayServer`` needs."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

from harness.sim.n6705a.server import LineServer
from harness.sim.n6705a.transcript import HOST, Transcript


class ReplayServer:
    def __init__(self, recorded: Transcript, host: str = "127.0.0.1", port: int = 0):
        self._entries = recorded.entries
        self._pos = 0
        self._lock = threading.Lock()
        self.mismatches: list[str] = []
        self._server = LineServer(self._handle, host, port)

    @property
    def resource(self) -> str:
        return self._server.resource

    @property
    def finished(self) -> bool:
        return self._pos >= len(self._entries)

    @property
    def remaining(self) -> list[str]:
        return [e.line() for e in self._entries[self._pos :]]

    def _handle(self, line: str) -> bytes | None:
        with self._lock:
            if self._pos >= len(self._entries):
                self.mismatches.append(f"unexpected extra message {line!r}")
                return None
            want = self._entries[self._pos]
            if want.kind != HOST or want.data.decode("latin-1") != line:
                self.mismatches.append(f"entry {self._pos}: expected {want.line()!r}, host sent {line!r}")
                return None
            self._pos += 1
            out = b""
            while self._pos < len(self._entries) and self._entries[self._pos].kind != HOST:
                out += self._entries[self._pos].wire
                self._pos += 1
            return out or None

    def __enter__(self) -> ReplayServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


class RecordingProxy:
    """Forward a loopback port to ``target`` (host, port), recording both directions.

    Point PyVISA at ``proxy.resource`` instead of the instrument; ``proxy.transcript.dumps()``
    is then a fixture for ReplayServer. One client at a time."""

    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1", port: int = 0):
        self.target = target
        self.transcript = Transcript()
        self._sock = socket.create_server((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="scpi-proxy")

    @property
    def resource(self) -> str:
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        try:
            client, _ = self._sock.accept()
        except OSError:
            return
        upstream = socket.create_connection(self.target, timeout=10)
        up = threading.Thread(target=self._pump, args=(client, upstream, self._split_commands), daemon=True)
        up.start()
        self._pump(upstream, client, self._split_responses)

    def _pump(self, src: socket.socket, dst: socket.socket, record: Callable[[bytes], bytes]) -> None:
        """Forward ``src`` to ``dst``; ``record`` transcribes what is complete in the buffer and
        returns the rest. It runs before forwarding, so the transcript never lags the peer."""
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = src.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf = record(buf + chunk)
            dst.sendall(chunk)

    def _split_commands(self, buf: bytes) -> bytes:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            self.transcript.add(HOST, line.rstrip(b"\r"))
        return buf

    def _split_responses(self, buf: bytes) -> bytes:
        while buf:
            if buf.startswith(b"#") and len(buf) >= 2 and buf[1:2].isdigit():
                n = int(buf[1:2])
                if len(buf) < 2 + n:
                    return buf
                total = 2 + n + int(buf[2 : 2 + n] or b"0") + 1
                if len(buf) < total:
                    return buf
                self.transcript.add_response(buf[:total])
                buf = buf[total:]
            elif b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                self.transcript.add_response(line + b"\n")
            else:
                return buf
        return buf
