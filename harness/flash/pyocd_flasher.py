"""pyOCD backend: ConnectHelper session (never blocking), FileProgrammer, explicit
reset_and_halt before and reset after programming (FileProgrammer never resets), verification
by read-back CRC, and pyOCD/library errors mapped to FlashError subclasses."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from harness.config.board import BoardConfig
from harness.flash.base import Flasher, ProbeInfo
from harness.flash.errors import (
    FlashError,
    FlashFailedError,
    FlashTimeoutError,
    NoProbeError,
    ProbeConnectionError,
    VerifyError,
    WrongTargetError,
)

T = TypeVar("T")
_PYOCD_IMPORT = threading.Lock()


def _load_pyocd() -> None:
    """Import pyOCD's modules once, one thread at a time. Its modules import each other, so two
    station threads importing it at the same moment can get a partially initialised
    ``pyocd.core.helpers`` (ImportError "cannot import name 'ConnectHelper'", seen with two
    simulated boards flashing at once); Python's per-module import locks do not cover that cycle."""
    with _PYOCD_IMPORT:
        import pyocd.core.exceptions
        import pyocd.core.helpers
        import pyocd.flash.file_programmer  # noqa: F401


class PyocdFlasher(Flasher):
    def __init__(
        self,
        board: BoardConfig,
        probe: str | None = None,
        timeout_s: float = 60.0,
        options: dict | None = None,
        drive: str | Path | None = None,  # registry signature; pyOCD reaches boards by probe, not drive
    ):
        _load_pyocd()
        self.board = board
        self.probe = probe
        self.timeout_s = timeout_s
        self.options = {"hide_programming_progress": True, **(options or {})}

    # -- helpers -------------------------------------------------------------------------
    def _error(self, cls: type[FlashError], cause: str) -> FlashError:
        return cls(self.board.name, self.probe, cause)

    def _with_timeout(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` in a worker thread; a hung probe becomes FlashTimeoutError, not a hang."""
        box: dict[str, object] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:
                box["error"] = exc
            finally:
                done.set()

        t = threading.Thread(target=work, name=f"flash-{self.board.name}", daemon=True)
        t.start()
        # An Event, not Thread.join: a join that a signal handler interrupts marks the thread as
        # stopped while it still runs (CPython 3.11), so a second join would return at once.
        try:
            finished = _wait_in_slices(done, self.timeout_s)
        except BaseException:
            # Ctrl-C / SIGTERM: let the probe session finish and close before unwinding, so
            # nothing is left touching the (possibly emulated) target while the process exits.
            done.wait(5.0)
            raise
        if not finished:
            raise self._error(FlashTimeoutError, f"{what} did not finish within {self.timeout_s:g} s")
        if "error" in box:
            raise self._map(box["error"])  # type: ignore[arg-type]
        return box["value"]  # type: ignore[return-value]

    def _map(self, exc: BaseException) -> BaseException:
        from pyocd.core import exceptions as pe

        if isinstance(exc, FlashError):
            return exc
        if isinstance(exc, pe.TargetSupportError):
            return self._error(WrongTargetError, f"target '{self.board.flash.pyocd_target}': {exc}")
        if isinstance(exc, pe.FlashFailure):
            return self._error(FlashFailedError, str(exc))
        if isinstance(exc, ConnectionRefusedError):
            return self._error(ProbeConnectionError, f"remote probe not reachable ({exc})")
        if isinstance(exc, pe.TimeoutError):
            return self._error(FlashTimeoutError, str(exc))
        if isinstance(exc, pe.Error) and "unknown debug probe type" in str(exc):
            return self._error(NoProbeError, str(exc))
        if isinstance(exc, (pe.Error, OSError)):
            return self._error(ProbeConnectionError, f"{type(exc).__name__}: {exc}")
        return exc

    def _session(self, connect_mode: str = "halt", resume_on_disconnect: bool = True):
        from pyocd.core.helpers import ConnectHelper

        # Choose the probe ourselves: with several candidates pyOCD would prompt on stdin.
        probes = ConnectHelper.get_all_connected_probes(
            blocking=False, unique_id=self.probe, print_wait_message=False
        )
        if not probes:
            raise self._error(
                NoProbeError,
                "no debug probe found"
                + (f" with unique id '{self.probe}'" if self.probe else "")
                + " (see `pyocd list`)",
            )
        if len(probes) > 1:
            ids = ", ".join(p.unique_id for p in probes)
            raise self._error(NoProbeError, f"several probes match ({ids}); choose one with --probe")
        options = {**self.options, "connect_mode": connect_mode, "resume_on_disconnect": resume_on_disconnect}
        session = ConnectHelper.session_with_chosen_probe(
            blocking=False,
            return_first=True,
            unique_id=probes[0].unique_id,
            target_override=self.board.flash.pyocd_target,
            options=options,
        )
        if session is None:
            raise self._error(NoProbeError, f"probe '{probes[0].unique_id}' disappeared before connecting")
        return session

    def _in_session(
        self, what: str, action: Callable, connect_mode: str = "halt", resume_on_disconnect: bool = True
    ) -> object:
        def work() -> object:
            session = self._session(connect_mode, resume_on_disconnect)
            with session:
                return action(session)

        return self._with_timeout(what, work)

    # -- interface -----------------------------------------------------------------------
    def list_probes(self) -> list[ProbeInfo]:
        from pyocd.core.helpers import ConnectHelper

        probes = self._with_timeout(
            "probe listing", lambda: ConnectHelper.get_all_connected_probes(blocking=False)
        )
        return [ProbeInfo(p.unique_id, p.description, p.vendor_name) for p in probes]

    def program(self, firmware: str | Path, verify: bool = True) -> None:
        from pyocd.flash.file_programmer import FileProgrammer

        from harness.flash.image import image_format, load_segments

        path = Path(firmware)
        if not path.is_file():
            raise self._error(FlashFailedError, f"firmware file not found: {path}")
        fmt = image_format(path)
        segments = load_segments(path, self.board.program_base)

        def action(session) -> None:
            target = session.target
            target.reset_and_halt()
            FileProgrammer(session).program(
                str(path), file_format=fmt, base_address=self.board.program_base if fmt == "bin" else None
            )
            if verify:
                for addr, data in segments:
                    back = bytes(target.read_memory_block8(addr, len(data)))
                    if zlib.crc32(back) != zlib.crc32(data):
                        bad = next(i for i in range(len(data)) if back[i] != data[i])
                        raise self._error(
                            VerifyError,
                            f"read-back differs from {path.name} at {addr + bad:#010x} "
                            f"(wrote {data[bad]:#04x}, read {back[bad]:#04x})",
                        )
            target.reset()

        self._in_session(f"programming {path.name}", action)

    def reset(self) -> None:
        self._in_session("reset", lambda s: s.target.reset(), connect_mode="attach")

    def run(self) -> None:
        self._in_session("resume", lambda s: s.target.resume(), connect_mode="attach")

    def halt(self) -> None:
        self._in_session("halt", lambda s: s.target.halt(), connect_mode="attach", resume_on_disconnect=False)


def _wait_in_slices(event: threading.Event, timeout_s: float, slice_s: float = 0.2) -> bool:
    """``event.wait(timeout_s)`` that returns to Python code every ``slice_s``: a SIGINT/SIGTERM
    the kernel delivers to another thread (the emulator's, say) is only handled once the main
    thread runs bytecode again, so one long wait would hold Ctrl-C back for the whole timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return event.is_set()
        if event.wait(min(slice_s, left)):
            return True
