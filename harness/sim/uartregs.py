"""The UART's DATA / STATE / CTRL registers served in C (native/uartregs.c), with the board's
native block hook: host and firmware bytes cross in C FIFOs instead of one Python mmio
callback per register access (issue 16). Everything else in the UART's 4 KB page, and the
empty STATE read that may park the core, still reaches Mmio (harness/sim/mmio.py), so timing,
parking and power are those of the Python path.

The UART server (harness/sim/uart.py) uses this as its FIFO backend: ``rx_push`` one call per
received chunk, ``tx_take`` one call per burst, woken through a pipe the C side writes to.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unicorn import Uc, UcError
from unicorn import arm_const as uca
from unicorn.unicorn_py3 import unicorn as _ucmod

from harness.sim.counter import CURSOR_FIELDS, NativeCounter, native_library

PAGE = 0x1000

# Poll states (BU_POLL_* in uartregs.c): what Mmio's "last empty STATE read" is.
POLL_NONE, POLL_DEFERRED, POLL_PYTHON, POLL_CANCELLED = 0, 1, 2, 3

_REG_IDS = (
    *(getattr(uca, f"UC_ARM_REG_R{i}") for i in range(13)),
    uca.UC_ARM_REG_SP,
    uca.UC_ARM_REG_LR,
    uca.UC_ARM_REG_PC,
)
_REG_INDEX = {reg: i for i, reg in enumerate(_REG_IDS)}


class Snapshot(ctypes.Structure):
    """A deferred empty STATE read: the block counters then and the core registers. It serves
    as both the counter and the register file for BlockDecoder.locate."""

    _fields_ = [
        *CURSOR_FIELDS,
        ("address", ctypes.c_uint64),
        ("regs", ctypes.c_uint32 * len(_REG_IDS)),
    ]

    def reg_read(self, reg: int) -> int:
        return int(self.regs[_REG_INDEX[reg]])


_READ_CB = _ucmod.MMIO_READ_CFUNC
_WRITE_CB = _ucmod.MMIO_WRITE_CFUNC
_LIB_READY = False


def _library() -> ctypes.CDLL:
    global _LIB_READY
    lib = native_library()
    if lib is None:
        raise RuntimeError("the native UART registers need the native library (see native_error())")
    if not _LIB_READY:
        vp, u32, u64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64
        sigs: dict[str, tuple[list[object], object]] = {
            "bu_new": ([vp, vp, ctypes.POINTER(ctypes.c_int)], vp),
            "bu_set_tx_fd": ([vp, ctypes.c_int], None),
            "bu_free": ([vp], None),
            "bu_set_fallback": ([vp, vp, vp, u64, u64], None),
            "bu_get_ctrl": ([vp], u32),
            "bu_set_ctrl": ([vp, u32], None),
            "bu_get_poll": ([vp], u32),
            "bu_set_poll": ([vp, u32], None),
            "bu_served": ([vp], u64),
            "bu_snapshot_copy": ([vp, ctypes.POINTER(Snapshot)], None),
            "bu_rx_push": ([vp, ctypes.c_char_p, u64], None),
            "bu_rx_count": ([vp], u64),
            "bu_rx_pop": ([vp], ctypes.c_int),
            "bu_tx_take": ([vp, vp, u64], u64),
            "bu_tx_count": ([vp], u64),
        }
        for name, (args, res) in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = args, res
        _LIB_READY = True
    return lib


@dataclass
class _Native:
    """What the finalizer frees (not the NativeUart, which it must not keep alive)."""

    lib: ctypes.CDLL
    handle: int
    fds: list[int]

    def free(self) -> None:
        self.lib.bu_free(self.handle)
        for fd in self.fds:
            os.close(fd)


class NativeUart:
    """The C FIFOs and register state of one board's UART (lives as long as the board)."""

    def __init__(self, counter: NativeCounter):
        self._lib = _library()
        ids = (ctypes.c_int * len(_REG_IDS))(*_REG_IDS)
        batch = ctypes.cast(_ucmod.uclib.uc_reg_read_batch, ctypes.c_void_p).value
        handle = self._lib.bu_new(counter.state_address, batch, ids)
        if not handle:
            raise MemoryError("bu_new")
        self._h = handle
        self._fds: list[int] = []  # the wake-up pipe (read, write), once open_wake() made it
        self._native = _Native(self._lib, handle, self._fds)
        # Not at interpreter exit: an emulation thread that outlived its stop may still be in C.
        weakref.finalize(self, self._native.free).atexit = False
        self._callbacks: tuple[object, object] | None = None  # the mapped engine's fallbacks
        self._out = ctypes.create_string_buffer(1 << 16)

    # -- registers -------------------------------------------------------------------------
    def map(
        self,
        uc: Uc,
        address: int,
        window_offset: int,
        read: Callable[[Uc, int, int, object], int],
        write: Callable[[Uc, int, int, int, object], None],
    ) -> None:
        """Serve the 4 KB page at ``address`` of a new engine; other accesses go to
        ``read``/``write`` with offsets ``window_offset`` + the page offset."""
        engine: Any = uc  # the binding's own Uc class (mypy resolves `unicorn.Uc` to the py2 one)
        rd = _ucmod.uccallback(engine, _READ_CB)(lambda uc_, off, size, _ud: read(uc_, off, size, None))
        wr = _ucmod.uccallback(engine, _WRITE_CB)(
            lambda uc_, off, size, value, _ud: write(uc_, off, size, value, None)
        )
        self._lib.bu_set_fallback(
            self._h, ctypes.cast(rd, ctypes.c_void_p), ctypes.cast(wr, ctypes.c_void_p), address, window_offset
        )
        self._callbacks = (rd, wr)  # exceptions in them stop the engine and re-raise (binding's guard)
        err = _ucmod.uclib.uc_mmio_map(
            uc._uch,
            address,
            PAGE,
            ctypes.cast(self._lib.bu_read, ctypes.c_void_p),
            ctypes.c_void_p(self._h),
            ctypes.cast(self._lib.bu_write, ctypes.c_void_p),
            ctypes.c_void_p(self._h),
        )
        if err != 0:
            raise UcError(err)

    @property
    def ctrl(self) -> int:
        return int(self._lib.bu_get_ctrl(self._h))

    @ctrl.setter
    def ctrl(self, value: int) -> None:
        self._lib.bu_set_ctrl(self._h, value)

    @property
    def poll(self) -> int:
        return int(self._lib.bu_get_poll(self._h))

    @poll.setter
    def poll(self, value: int) -> None:
        self._lib.bu_set_poll(self._h, value)

    def snapshot(self) -> Snapshot:
        snap = Snapshot()
        self._lib.bu_snapshot_copy(self._h, ctypes.byref(snap))
        return snap

    @property
    def served(self) -> int:
        """Register accesses answered in C (no Python involved)."""
        return int(self._lib.bu_served(self._h))

    # -- FIFOs (UartServer) --------------------------------------------------------------------
    def open_wake(self) -> None:
        """Create the pipe through which the C side announces output (once; for a pump thread)."""
        if not self._fds:
            read_fd, write_fd = os.pipe()
            os.set_blocking(write_fd, False)
            self._fds += [read_fd, write_fd]
            self._lib.bu_set_tx_fd(self._h, write_fd)

    def wait_wake(self) -> None:
        """Block until the C side (or ``wake``) announces output."""
        os.read(self._fds[0], 4096)

    def wake(self) -> None:
        if self._fds:
            with contextlib.suppress(BlockingIOError):  # the pipe is full of wake-ups already
                os.write(self._fds[1], b"s")

    def rx_push(self, data: bytes) -> None:
        self._lib.bu_rx_push(self._h, data, len(data))

    def rx_count(self) -> int:
        return int(self._lib.bu_rx_count(self._h))

    def rx_pop(self) -> int:
        return int(self._lib.bu_rx_pop(self._h))

    def tx_pending(self) -> int:
        return int(self._lib.bu_tx_count(self._h))

    def tx_take(self) -> bytes:
        """Every firmware byte not yet taken (and re-arm the wake-up)."""
        parts = []
        while True:
            n = self._lib.bu_tx_take(self._h, self._out, len(self._out))
            if n:
                parts.append(self._out.raw[:n])
            if n < len(self._out):
                return b"".join(parts)
