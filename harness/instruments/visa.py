"""PyVISA plumbing shared by the instrument drivers: opening a resource with the right
terminations, SCPI writes that are followed by an error-queue check, and binary block reads."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from harness.instruments.errors import InstrumentConnectionError, InstrumentError

MAX_ERRORS_DRAINED = 50
SIM_YAML = Path(__file__).resolve().parents[1] / "sim" / "n6705a" / "n6705a.yaml"


def open_resource(resource: str, backend: str = "@py", timeout_ms: int = 10000) -> Any:
    """Open a VISA resource; every message-based resource gets '\\n' terminations (a SOCKET
    resource has no read termination by default, and a query would then hang)."""
    import pyvisa

    if backend == "@sim":  # pyvisa-sim with the packaged identity-level N6705 description
        backend = f"{SIM_YAML}@sim"
    try:
        rm = pyvisa.ResourceManager(backend)
    except (OSError, ValueError) as exc:
        hint = " (install NI-VISA or Keysight IO Libraries, or use backend '@py')" if backend == "@ivi" else ""
        raise InstrumentError(f"VISA backend {backend!r} unavailable: {exc}{hint}") from exc
    try:
        res = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=timeout_ms)
    except Exception as exc:  # pyvisa raises VisaIOError, OSError, ValueError...
        raise InstrumentConnectionError(f"cannot open {resource} with {backend}: {exc}") from exc
    return res


def _is_transport_error(exc: Exception) -> bool:
    """A VISA I/O error (timeout, connection lost, ...) as opposed to a malformed reply."""
    import pyvisa.errors

    return isinstance(exc, pyvisa.errors.VisaIOError | ConnectionError | TimeoutError)


def parse_error(reply: str) -> tuple[int, str]:
    """``-113,"Undefined header"`` -> (-113, 'Undefined header')."""
    m = re.match(r"\s*([-+]?\d+)\s*,\s*\"?(.*?)\"?\s*$", reply)
    if not m:
        raise InstrumentError(f"unparseable SYST:ERR? reply {reply!r}")
    return int(m.group(1)), m.group(2)


class ScpiInstrument:
    """A SCPI instrument behind a PyVISA resource. ``name`` prefixes every error message."""

    def __init__(self, resource: Any, name: str):
        self.res = resource
        self.name = name

    def write(self, cmd: str) -> None:
        try:
            self.res.write(cmd)
        except Exception as exc:
            raise InstrumentConnectionError(f"{self.name}: write {cmd!r} failed: {exc}") from exc

    def query(self, cmd: str) -> str:
        try:
            return str(self.res.query(cmd)).strip()
        except Exception as exc:
            raise InstrumentConnectionError(f"{self.name}: query {cmd!r} failed: {exc}") from exc

    def query_float(self, cmd: str) -> float:
        reply = self.query(cmd)
        try:
            return float(reply.split(",")[0])
        except ValueError:
            raise InstrumentError(f"{self.name}: {cmd!r} answered {reply!r}, not a number") from None

    def errors(self) -> list[tuple[int, str]]:
        """Drain the error queue (SYST:ERR? until +0)."""
        found: list[tuple[int, str]] = []
        for _ in range(MAX_ERRORS_DRAINED):
            code, msg = parse_error(self.query("SYST:ERR?"))
            if code == 0:
                return found
            found.append((code, msg))
        raise InstrumentError(f"{self.name}: error queue did not empty after {MAX_ERRORS_DRAINED} reads")

    def check(self, context: str) -> None:
        """Raise InstrumentError with the instrument's own messages if the queue holds any."""
        errs = self.errors()
        if errs:
            text = "; ".join(f'{code},"{msg}"' for code, msg in errs)
            raise InstrumentError(f"{self.name} rejected {context}: {text}", errs)

    def write_checked(self, cmd: str) -> None:
        self.write(cmd)
        self.check(repr(cmd))

    def query_block(self, cmd: str, big_endian: bool) -> np.ndarray:
        """float32 IEEE 488.2 definite-length block."""
        try:
            values = self.res.query_binary_values(
                cmd, datatype="f", is_big_endian=big_endian, container=np.array, expect_termination=True
            )
        except (OSError, EOFError) as exc:
            raise InstrumentConnectionError(f"{self.name}: {cmd!r}: {exc}") from exc
        except Exception as exc:
            if _is_transport_error(exc):
                raise InstrumentConnectionError(f"{self.name}: {cmd!r}: {exc}") from exc
            raise
        return np.asarray(values, dtype=float)

    def read_raw(self) -> bytes:
        try:
            return bytes(self.res.read_raw())
        except Exception as exc:
            raise InstrumentConnectionError(f"{self.name}: read failed: {exc}") from exc

    def query_ascii(self, cmd: str) -> np.ndarray:
        reply = self.query(cmd)
        if not reply:
            return np.zeros(0)
        return np.array([float(x) for x in reply.split(",")])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.res.close()
