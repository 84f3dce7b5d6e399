"""The simulated board's UART as a TCP endpoint on 127.0.0.1, so the host opens it with pyserial
(``serial.serial_for_url("socket://127.0.0.1:PORT")``) exactly like a real port.

One client at a time (a new connection replaces the old one, like reopening a port). Firmware
output goes to the connected client; while none is connected the last ``pending_limit`` bytes
are kept and delivered on connect (as a USB-serial bridge buffers for a closed port, and so a
client that connected just before the accept thread ran loses nothing). Everything transmitted
also goes to a bounded log for debugging; client bytes queue as RX input.

The byte FIFOs are Python (a deque for RX, ``transmit`` per TX byte) unless the board serves its
UART registers in C (harness/sim/uartregs.py): then RX chunks go to the C FIFO in one call and
firmware output is taken from it per burst, by a pump thread the C side wakes through a pipe
on each newline (and by ``collect``, which the board calls whenever the firmware waits).
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.sim.uartregs import NativeUart


class UartServer:
    def __init__(
        self,
        name: str,
        host: str = "127.0.0.1",
        port: int = 0,
        log_limit: int = 1 << 16,
        pending_limit: int = 4096,
        fifo: NativeUart | None = None,
    ):
        self.name = name
        self.fifo = fifo
        self._collect_lock = threading.Lock()  # keeps bursts taken from the C FIFO in order
        self._host, self._want_port = host, port
        self._sock: socket.socket | None = None
        self._client: socket.socket | None = None
        self._rx: deque[int] = deque()
        self.rx_changed = threading.Condition()
        self._tx: queue.Queue[bytes | None] = queue.Queue()
        self._log = bytearray()
        self._log_limit = log_limit
        self._pending = bytearray()
        self._pending_limit = pending_limit
        self._client_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._running = False
        self._closing = False  # wakes a parked core while the server shuts down
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> UartServer:
        if self._running:
            return self
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self._host, self.port or self._want_port))  # a restart keeps its URL
        self._sock.listen(4)
        self.port = self._sock.getsockname()[1]
        self._running = True
        if self.fifo is not None:
            self.fifo.open_wake()
        targets = [self._accept_loop, self._tx_loop] + ([self._pump_loop] if self.fifo is not None else [])
        for target in targets:
            t = threading.Thread(target=target, name=f"sim-uart-{self.name}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._closing = True
        self._tx.put(None)
        if self.fifo is not None:
            self.fifo.wake()  # ends the pump thread's wait
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        self._drop_client()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        with self.rx_changed:
            self.rx_changed.notify_all()
        self._closing = False

    @property
    def url(self) -> str:
        return f"socket://{self._host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    # -- firmware side -------------------------------------------------------------------
    def transmit(self, byte: int) -> None:
        self._emit(bytes([byte]))

    def _emit(self, data: bytes) -> None:
        self._log += data
        if len(self._log) > self._log_limit:
            del self._log[: len(self._log) - self._log_limit]
        with self._client_lock:
            if self._client is not None:
                self._tx.put(data)
                return
            self._pending += data
            if len(self._pending) > self._pending_limit:
                del self._pending[: len(self._pending) - self._pending_limit]

    def collect(self) -> None:
        """Take what the firmware wrote into the C FIFO (no-op on the Python path)."""
        if self.fifo is None:
            return
        with self._collect_lock:
            data = self.fifo.tx_take()
            if data:
                self._emit(data)

    def rx_available(self) -> bool:
        return self.fifo.rx_count() > 0 if self.fifo is not None else bool(self._rx)

    def rx_pop(self) -> int:
        if self.fifo is not None:
            return self.fifo.rx_pop()
        with self.rx_changed:
            return self._rx.popleft() if self._rx else 0

    def wait_rx(self, timeout: float) -> bool:
        with self.rx_changed:
            return self.rx_changed.wait_for(lambda: self.rx_available() or self._closing, timeout)

    def inject(self, data: bytes) -> None:
        """Queue bytes as if the host had sent them (for in-process use without a socket)."""
        with self.rx_changed:
            if self.fifo is not None:
                self.fifo.rx_push(bytes(data))
            else:
                self._rx.extend(data)
            self.rx_changed.notify_all()

    def output(self) -> bytes:
        """Everything the firmware transmitted (bounded log), connected or not."""
        self.collect()
        return bytes(self._log)

    def clear_output(self) -> None:
        self.collect()
        self._log.clear()

    # -- threads -------------------------------------------------------------------------
    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while self._running:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._drop_client()
            with self._client_lock:
                self._client = conn
                if self._pending:
                    self._tx.put(bytes(self._pending))
                    self._pending.clear()
            threading.Thread(
                target=self._rx_loop, args=(conn,), daemon=True, name=f"sim-uart-rx-{self.name}"
            ).start()

    def _rx_loop(self, conn: socket.socket) -> None:
        while self._running:
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if not data:
                if self._client is conn:
                    self._client = None
                return
            self.inject(data)

    def _pump_loop(self) -> None:
        """Native FIFO: take each burst the C side announces (newline or a full buffer)."""
        assert self.fifo is not None
        while self._running:
            self.fifo.wait_wake()
            self.collect()

    def _tx_loop(self) -> None:
        while True:
            chunk = self._tx.get()
            if chunk is None:
                return
            parts = [chunk]
            while not self._tx.empty():  # coalesce bursts into one send
                nxt = self._tx.get_nowait()
                if nxt is None:
                    return
                parts.append(nxt)
            client = self._client
            if client is not None:
                with contextlib.suppress(OSError):
                    client.sendall(b"".join(parts))
