"""Block-level cycle/instruction counting: the native C hook (fast path) or a Python hook (fallback).

Both keep the same state (see native/blockhook.c): totals at the start of the current block, the
current block, a cycle limit and a stop request; stopping happens before a block executes.
The native library is compiled with the host gcc on first use into a cache directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from unicorn import UC_HOOK_BLOCK, Uc
from unicorn.unicorn_py3 import unicorn as _ucmod

from harness.sim.cycles import BlockCost

_SRC = Path(__file__).with_name("native") / "blockhook.c"
NO_LIMIT = (1 << 64) - 1


class _Entry(ctypes.Structure):
    _fields_ = [
        ("key", ctypes.c_uint64),
        ("cycles", ctypes.c_uint32),
        ("insns", ctypes.c_uint32),
        ("mem", ctypes.c_uint32),
        ("penalty", ctypes.c_uint32),
    ]


_MISS = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint32, ctypes.POINTER(_Entry))


class _State(ctypes.Structure):
    _fields_ = [
        ("cycles", ctypes.c_uint64),
        ("insns", ctypes.c_uint64),
        ("mem", ctypes.c_uint64),
        ("blocks", ctypes.c_uint64),
        ("cur_addr", ctypes.c_uint64),
        ("cur_size", ctypes.c_uint32),
        ("have_cur", ctypes.c_uint32),
        ("cur_cycles", ctypes.c_uint32),
        ("cur_insns", ctypes.c_uint32),
        ("cur_mem", ctypes.c_uint32),
        ("cur_penalty", ctypes.c_uint32),
        ("cycle_limit", ctypes.c_uint64),
        ("stop_request", ctypes.c_uint32),
        ("stopped", ctypes.c_uint32),
        ("stop", ctypes.c_void_p),
        ("miss", ctypes.c_void_p),
        ("table", ctypes.c_void_p),
        ("mask", ctypes.c_uint64),
        ("used", ctypes.c_uint64),
    ]


_STATE_FIELDS = frozenset(f[0] for f in _State._fields_)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "native"


_LIB: ctypes.CDLL | None = None
_LIB_ERROR: str | None = None


def native_library() -> ctypes.CDLL | None:
    """Compile (once, cached by source hash) and load the native hook; None if gcc is missing."""
    global _LIB, _LIB_ERROR
    if _LIB is not None or _LIB_ERROR is not None:
        return _LIB
    if os.environ.get("HARNESS_SIM_NATIVE", "1") == "0":
        _LIB_ERROR = "disabled by HARNESS_SIM_NATIVE=0"
        return None
    src = _SRC.read_bytes()
    so = cache_dir() / f"blockhook-{hashlib.sha256(src).hexdigest()[:16]}.so"
    if not so.exists():
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            _LIB_ERROR = "no host C compiler (gcc/cc) found"
            return None
        try:
            so.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=so.parent) as tmp:
                out = Path(tmp) / so.name
                proc = subprocess.run(
                    [gcc, "-O2", "-shared", "-fPIC", "-o", str(out), str(_SRC)], capture_output=True, text=True
                )
                if proc.returncode != 0:
                    _LIB_ERROR = f"gcc failed: {proc.stderr.strip()[:500]}"
                    return None
                os.replace(out, so)  # atomic: concurrent processes never load a half-written file
        except OSError as exc:
            _LIB_ERROR = f"cannot build the native hook in {so.parent}: {exc}"
            return None
    _LIB = ctypes.CDLL(str(so))
    _LIB.bh_init.argtypes = [ctypes.POINTER(_State), ctypes.c_uint64]
    _LIB.bh_free.argtypes = [ctypes.POINTER(_State)]
    _LIB.bh_clear.argtypes = [ctypes.POINTER(_State)]
    _LIB.bh_commit.argtypes = [ctypes.POINTER(_State), ctypes.c_uint64]
    return _LIB


def native_error() -> str | None:
    native_library()
    return _LIB_ERROR


class BlockCounter:
    """Common surface of both counters (attribute names match the C state)."""

    native = False
    cycles: int
    insns: int
    mem: int
    blocks: int
    cur_addr: int
    cur_size: int
    have_cur: int
    cycle_limit: int
    stop_request: int
    stopped: int

    def attach(self, uc: Uc) -> None:
        raise NotImplementedError

    def commit(self, next_address: int) -> None:
        raise NotImplementedError

    def clear_cache(self) -> None:
        raise NotImplementedError

    def add_cycles(self, n: int) -> None:
        self.cycles += n


class NativeCounter(BlockCounter):
    """The C block hook; block costs come from ``lookup`` (called once per new block)."""

    native = True

    def __init__(self, lookup: Callable[[int, int], BlockCost]):
        lib = native_library()
        if lib is None:
            raise RuntimeError(f"native block hook unavailable: {_LIB_ERROR}")
        self._lib = lib
        self._s = _State()
        lib.bh_init(ctypes.byref(self._s), 4096)
        self._lookup = lookup

        def miss(address: int, size: int, out: ctypes._Pointer) -> None:
            bc = lookup(address, size)
            e = out.contents
            e.cycles, e.insns, e.mem, e.penalty = bc.cycles, bc.insns, bc.mem, bc.penalty

        self._miss = _MISS(miss)
        self._s.miss = ctypes.cast(self._miss, ctypes.c_void_p).value
        self._s.stop = ctypes.cast(_ucmod.uclib.uc_emu_stop, ctypes.c_void_p).value
        self._s.cycle_limit = NO_LIMIT
        self._hook = None

    def __getattr__(self, name: str) -> int:
        return getattr(self.__dict__["_s"], name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in _STATE_FIELDS:
            setattr(self._s, name, value)
        else:
            object.__setattr__(self, name, value)

    def attach(self, uc: Uc) -> None:
        h = _ucmod.uc_hook_h()
        fn = ctypes.cast(self._lib.bh_block, ctypes.c_void_p)
        err = _ucmod.uclib.uc_hook_add(
            uc._uch, ctypes.byref(h), UC_HOOK_BLOCK, fn, ctypes.c_void_p(ctypes.addressof(self._s)), 1, 0
        )
        if err != 0:
            raise RuntimeError(f"uc_hook_add failed ({err})")
        self._hook = h

    def commit(self, next_address: int) -> None:
        self._lib.bh_commit(ctypes.byref(self._s), next_address)

    def clear_cache(self) -> None:
        self._lib.bh_clear(ctypes.byref(self._s))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self._lib.bh_free(ctypes.byref(self._s))


class PyCounter(BlockCounter):
    """Pure-Python block hook (same semantics, ~50x slower): used when no C compiler exists."""

    def __init__(self, lookup: Callable[[int, int], BlockCost]):
        self._lookup = lookup
        self._cache: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self.cycles = self.insns = self.mem = self.blocks = 0
        self.cur_addr = self.cur_size = self.have_cur = 0
        self._cur = (0, 0, 0, 0)
        self.cycle_limit = NO_LIMIT
        self.stop_request = self.stopped = 0

    def attach(self, uc: Uc) -> None:
        uc.hook_add(UC_HOOK_BLOCK, self._hook)

    def commit(self, next_address: int) -> None:
        if not self.have_cur:
            return
        c, i, m, p = self._cur
        self.cycles += c
        self.insns += i
        self.mem += m
        if next_address != self.cur_addr + self.cur_size:
            self.cycles += p
        self.have_cur = 0

    def _hook(self, uc: Uc, address: int, size: int, _user: object) -> None:
        self.commit(address)
        if self.stop_request or self.cycles >= self.cycle_limit:
            self.stopped = 2 if self.stop_request else 1
            uc.emu_stop()
            return
        key = (address, size)
        entry = self._cache.get(key)
        if entry is None:
            bc = self._lookup(address, size)
            entry = self._cache[key] = (bc.cycles, bc.insns, bc.mem, bc.penalty)
        self._cur = entry
        self.cur_addr, self.cur_size, self.have_cur = address, size, 1
        self.blocks += 1

    def clear_cache(self) -> None:
        self._cache.clear()


def make_counter(lookup: Callable[[int, int], BlockCost], prefer_native: bool = True) -> BlockCounter:
    if prefer_native and native_library() is not None:
        return NativeCounter(lookup)
    return PyCounter(lookup)
