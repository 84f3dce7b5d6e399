"""Raw-socket SCPI server on loopback, as a real N6705A listens on port 5025: newline-terminated
program messages in, newline-terminated responses (text or IEEE 488.2 blocks) out. One thread
per client connection; the model serialises commands, so several clients may talk at once."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

from harness.sim.n6705a.model import N6705AModel
from harness.sim.n6705a.transcript import HOST, Transcript
from harness.sim.signals import SignalBus

LineHandler = Callable[[str], "bytes | None"]


class LineServer:
    """Accepts TCP clients and feeds each newline-terminated message to ``handle``."""

    def __init__(self, handle: LineHandler, host: str = "127.0.0.1", port: int = 0,
                 transcript: Transcript | None = None):
        self._handle = handle
        self.transcript = transcript if transcript is not None else Transcript()
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.1)  # accept() is not interrupted by close(): poll the stop flag
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def resource(self) -> str:
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    def start(self) -> None:
        t = threading.Thread(target=self._accept, daemon=True, name=f"scpi-accept-{self.port}")
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            for c in self._clients:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
                c.close()
        for t in self._threads:
            t.join(timeout=2)

    def drop_clients(self) -> int:
        """Break every open client connection (as a rebooted instrument or a pulled cable does);
        new connections are accepted as before. Returns how many were dropped."""
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        return len(clients)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._clients.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True, name="scpi-client")
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while not self._stop.is_set():
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.rstrip(b"\r")
                    if not line.strip():
                        continue
                    self.transcript.add(HOST, line)
                    reply = self._handle(line.decode("latin-1"))
                    if reply is not None:
                        self.transcript.add_response(reply)
                        conn.sendall(reply)
        except OSError:
            return
        finally:
            with self._lock:
                if conn in self._clients:
                    self._clients.remove(conn)
            conn.close()


class SimN6705A:
    """The simulated N6705A: ``attach`` boards' SignalBuses to channels, ``wire_pin`` their GPIO
    to digital-port pins, ``start`` and hand ``resource`` to PyVISA.

    ``noise_a`` adds Gaussian RMS noise to every current sample; ``drop_ohm`` makes the measured
    voltage sag by I*R; ``fetch_timeout_s`` bounds how long FETC waits before answering an
    error (-214) instead of hanging the socket.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, model: str = "N6705B",
                 noise_a: float = 0.0, drop_ohm: float = 0.0, fetch_timeout_s: float = 5.0,
                 elog_fifo_s: float = 20.0):
        self.model = N6705AModel(model=model, noise_a=noise_a, drop_ohm=drop_ohm,
                                 fetch_timeout_s=fetch_timeout_s, elog_fifo_s=elog_fifo_s)
        self._server = LineServer(self.model.execute, host, port)
        self._started = False

    def attach(self, channel: int, bus: SignalBus | None, module: str = "N6781A") -> SimN6705A:
        self.model.attach(channel, bus, module)
        return self

    def wire_pin(self, pin: int, bus: SignalBus) -> SimN6705A:
        self.model.wire_pin(pin, bus)
        return self

    @property
    def transcript(self) -> Transcript:
        return self._server.transcript

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def resource(self) -> str:
        return self._server.resource

    def drop_connections(self) -> int:
        """Fault injection: kill every client's TCP connection (the instrument keeps its state)."""
        return self._server.drop_clients()

    def start(self) -> SimN6705A:
        if not self._started:
            self._server.start()
            self._started = True
        return self

    def stop(self) -> None:
        for ch in self.model.channels.values():
            if ch.acq is not None:
                ch.acq.abort()
        self._server.stop()

    def __enter__(self) -> SimN6705A:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
