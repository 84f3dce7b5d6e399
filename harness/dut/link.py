"""DutLink: one open connection to the benchmark firmware.

Any pyserial port or URL works (``/dev/ttyACM0``, ``socket://127.0.0.1:PORT`` for simulated
boards and QEMU, ``loop://`` in tests). Every call has a deadline; failures raise DutError
subclasses naming the port, the command and what came back.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from types import TracebackType

import serial

from harness.dut import protocol as p
from harness.dut.errors import DutChecksumError, DutError, DutFault, DutProtocolError, DutTimeout
from harness.dut.protocol import DutInfo, InferResult


class DutLink:
    """Command/reply exchange with the firmware (docs/protocol.md)."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 115200,
        timeout: float = 5.0,
        per_inference_timeout: float = 5.0,
        log: Callable[[str, str], None] | None = None,
        fault_check: Callable[[], str | None] | None = None,
    ):
        """``timeout`` bounds every reply; ``infer`` adds ``per_inference_timeout`` per
        inference plus the requested idle gaps. ``log(direction, text)`` sees all traffic.
        ``fault_check()`` returns why the board can no longer answer (e.g. a simulated board's
        fault) or None; it is asked while waiting, so a fault ends the wait at once (DutFault)."""
        self.port = port
        self._fault_check = fault_check
        self._last_raw = b""
        self.baudrate = baudrate
        self.timeout = timeout
        self.per_inference_timeout = per_inference_timeout
        self.info: DutInfo | None = None
        self._budget = timeout
        self._log = log
        self._buf = b""
        try:
            self._ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05, write_timeout=timeout)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DutError(port, "(open)", f"cannot open the port: {exc}") from None

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        self._ser.close()

    def __enter__(self) -> DutLink:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- raw I/O -----------------------------------------------------------------------------
    def _write(self, text: str, command: str) -> None:
        if self._log:
            self._log(">", text)
        try:
            self._ser.write(text.encode("ascii"))
            self._ser.flush()
        except (serial.SerialException, OSError) as exc:
            raise DutError(self.port, command, f"write failed: {exc}") from None

    def _read_line(self, deadline: float, command: str, received: list[str]) -> str | None:
        """Next line (without CR/LF), or None when the deadline passed."""
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._ser.timeout = min(remaining, 0.2)
            try:
                chunk = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise DutError(self.port, command, f"read failed: {exc}", "\n".join(received)) from None
            self._buf += chunk
            if not chunk and self._fault_check is not None:
                why = self._fault_check()
                if why:
                    partial = "\n".join([*received, self._buf.decode("ascii", errors="replace")]).strip()
                    raise DutFault(self.port, command, f"the board faulted: {why}", partial)
        raw, self._buf = self._buf.split(b"\n", 1)
        self._last_raw = raw + b"\n"
        line = raw.decode("ascii", errors="replace").strip("\r\x00 ")
        if self._log:
            self._log("<", line)
        return line

    def _drain(self, quiet_s: float = 0.05, limit_s: float = 3.0) -> bytes:
        """Discard everything pending until the line is quiet for ``quiet_s``; a device that
        keeps talking for ``limit_s`` (e.g. a boot loop) is an error."""
        dropped, self._buf = self._buf, b""
        self._ser.timeout = quiet_s
        deadline = time.monotonic() + limit_s
        while True:
            chunk = self._ser.read(4096)
            if not chunk:
                return dropped
            dropped += chunk
            if time.monotonic() > deadline:
                raise DutError(
                    self.port, "(drain)", f"the device kept sending for {limit_s:.0f} s (boot loop?)",
                    dropped[-300:].decode("ascii", errors="replace"),
                )  # fmt: skip

    # -- protocol ----------------------------------------------------------------------------
    def resync(self, timeout: float | None = None) -> None:
        """Bring both ends to a command boundary: send a bare ``%`` (the firmware ends any
        partial command and answers m-ready), wait for m-ready, then drop what follows."""
        self._drain()
        self._exchange("%", timeout or self.timeout)
        self._drain()

    def wait_ready(self, timeout: float | None = None) -> list[str]:
        """Wait for the boot banner's m-ready (after power-up or ``reset``)."""
        self._budget = timeout or self.timeout
        return self._collect("(boot)", time.monotonic() + self._budget)

    def _collect(self, command: str, deadline: float) -> list[str]:
        """Lines up to m-ready, checked against the reply's m-crc line (CRC-32 of every byte
        of the reply before it, docs/protocol.md); the m-crc line itself is not returned."""
        received: list[str] = []
        crc = 0
        declared: int | None = None
        crc_line = ""
        while True:
            line = self._read_line(deadline, command, received)
            if line is None:
                partial = "\n".join([*received, self._buf.decode("ascii", errors="replace")]).strip()
                raise DutTimeout(self.port, command, f"no m-ready within {self._budget:.1f} s", partial)
            if line == p.READY:
                received.append(line)
                self._check_crc(command, received, crc, declared, crc_line)
                return received
            if line.startswith(p.CRC_PREFIX):
                crc_line = line
                declared = p.parse_crc(line)
                continue
            if declared is not None:  # bytes between the checksum and m-ready: not covered
                crc_line, declared = f"{crc_line} (followed by {line!r})", -1
            if line.startswith("m-boot="):
                crc = 0  # a boot banner starts a new reply (after reset% or a crash)
            crc = zlib.crc32(self._last_raw, crc)
            if line:
                received.append(line)

    def _check_crc(self, command: str, lines: list[str], crc: int, declared: int | None, crc_line: str) -> None:
        shown = "\n".join([*lines[:-1], crc_line, lines[-1]])
        if declared is None:
            raise DutProtocolError(self.port, command, f"reply has no {p.CRC_PREFIX}... line before m-ready "
                                   f"(firmware older than protocol {p.PROTOCOL_VERSION}? rebuild it)", shown)
        if declared != crc:
            got = "a malformed checksum line" if declared < 0 else f"{p.CRC_PREFIX}{declared:08x}"
            raise DutChecksumError(self.port, command, f"reply corrupted on the wire: it carries {got}, its bytes "
                                   f"give {crc:08x}", shown)

    def _exchange(self, command: str, timeout: float) -> list[str]:
        self._budget = timeout
        self._write(command, command)
        return self._collect(command, time.monotonic() + timeout)

    def command(self, command: str, *, timeout: float | None = None, retries: int = 0) -> list[str]:
        """Send one ``...%`` command; return its reply lines (m- lines, without m-ready).

        An ``e-`` line raises DutProtocolError. Lines that are neither m- nor e- (noise on the
        wire) or a timeout trigger a resync and, if ``retries`` allow, a retry."""
        if not command.endswith(p.TERMINATOR):
            command += p.TERMINATOR
        if self._buf or self._ser.in_waiting:
            self._drain()
        attempt = 0
        while True:
            try:
                lines = self._exchange(command, timeout or self.timeout)
            except (DutTimeout, DutChecksumError):
                if attempt >= retries:
                    if self._buf or self._ser.in_waiting:
                        self._drain()
                    raise
                attempt += 1
                self.resync()
                continue
            body = lines[:-1]
            errors = [ln for ln in body if ln.startswith("e-")]
            if errors:
                raise DutProtocolError(
                    self.port, command, f"firmware reported {', '.join(errors)}", "\n".join(lines)
                )
            if any(ln.startswith("m-boot=") for ln in body):
                raise DutError(self.port, command, "the board rebooted while answering", "\n".join(lines))
            noise = [ln for ln in body if not ln.startswith("m-")]
            if not noise:
                return body
            if attempt >= retries:
                self.resync()
                raise DutProtocolError(
                    self.port, command, f"garbled reply ({len(noise)} noise lines)", "\n".join(lines)
                )
            attempt += 1
            self.resync()

    def identify(self) -> DutInfo:
        """Ask the firmware who it is; the result is also kept in ``self.info``."""
        lines = self.command(p.identify_cmd(), retries=1)
        try:
            self.info = p.parse_identify(lines)
        except ValueError as exc:
            raise DutProtocolError(self.port, p.identify_cmd(), str(exc), "\n".join(lines)) from None
        return self.info

    def _require_info(self) -> DutInfo:
        return self.info if self.info is not None else self.identify()

    def load_input(self, data: bytes) -> None:
        """Send one input tensor (exactly the model's input bytes) in hex chunks."""
        info = self._require_info()
        if len(data) != info.input_bytes:
            raise DutError(
                self.port, "db load", f"input is {len(data)} bytes, the model takes {info.input_bytes}"
            )
        self.command(p.db_load_cmd(len(data)))
        lines: list[str] = []
        for i in range(0, len(data), p.DB_CHUNK_BYTES):
            lines = self.command(p.db_chunk_cmd(data[i : i + p.DB_CHUNK_BYTES]))
        loaded = p.key_values(lines).get("db-loaded")
        if loaded != str(len(data)):
            raise DutProtocolError(
                self.port, "db", f"firmware holds {loaded} bytes, sent {len(data)}", "\n".join(lines)
            )

    def infer(self, n: int, warmup: int = 0, gap_us: int = 0, *, timeout: float | None = None) -> InferResult:
        """Run ``warmup`` unmeasured then ``n`` measured inferences with ``gap_us`` of idle
        around each; batches of at most the firmware's max-laps are sent transparently
        (warm-up in the first batch only)."""
        if n < 1 or warmup < 0 or gap_us < 0:
            raise ValueError(f"infer needs n >= 1, warmup >= 0, gap_us >= 0 (got {n}, {warmup}, {gap_us})")
        info = self._require_info()
        cycles: list[int | None] = []
        crcs: list[int] = []
        done = 0
        while done < n:
            batch = min(n - done, info.max_laps)
            w = warmup if done == 0 else 0
            budget = timeout or (
                self.timeout + (batch + w) * self.per_inference_timeout + (batch + 1) * gap_us / 1e6
            )
            cmd = p.infer_cmd(batch, w, gap_us)
            lines = self.command(cmd, timeout=budget)
            try:
                c, k = p.parse_laps(lines, batch)
            except ValueError as exc:
                raise DutProtocolError(self.port, cmd, str(exc), "\n".join(lines)) from None
            cycles += c
            crcs += k
            done += batch
        return InferResult(
            cycles=cycles,
            checksums=crcs,
            warmup=warmup,
            gap_us=gap_us,
            counter=info.counter,
            counter_hz=info.counter_hz,
            counter_overhead=info.counter_overhead,
        )

    def results(self) -> bytes:
        """Output bytes of the last inference."""
        lines = self.command(p.results_cmd(), retries=1)
        try:
            return p.parse_results(lines)
        except ValueError as exc:
            raise DutProtocolError(self.port, p.results_cmd(), str(exc), "\n".join(lines)) from None

    def reset(self, timeout: float | None = None) -> list[str]:
        """Reset the board (firmware ``reset%``) and wait for its boot banner."""
        self._budget = timeout or self.timeout
        self._write("reset%", "reset%")
        lines = self.wait_ready(timeout)
        if not any(ln.startswith("m-boot=") for ln in lines):
            raise DutProtocolError(self.port, "reset%", "no boot banner after the reset", "\n".join(lines))
        self.info = None
        return lines
