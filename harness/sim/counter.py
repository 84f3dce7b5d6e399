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

from unicorn import UC_HOOK_BLOCK, Uc, UcError
from unicorn import arm_const as uca
from unicorn.unicorn_py3 import unicorn as _ucmod

from harness.sim.cycles import BlockCost
from harness.sim.memmodel import LruCache, MemorySystem
from harness.sim.romfloat import rom_float_op

_NATIVE = Path(__file__).with_name("native")
_SOURCES = (_NATIVE / "blockhook.c", _NATIVE / "uartregs.c")  # one library: uartregs.c reads bh_state
_HEADERS = (_NATIVE / "blockhook.h",)
NO_LIMIT = (1 << 64) - 1


class _Entry(ctypes.Structure):
    _fields_ = [
        ("key", ctypes.c_uint64),
        ("cycles", ctypes.c_uint32),
        ("insns", ctypes.c_uint32),
        ("mem", ctypes.c_uint32),
        ("penalty", ctypes.c_uint32),
        ("fp", ctypes.c_uint32),
        ("mul", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("nlits", ctypes.c_uint32),
        ("lits", ctypes.c_void_p),
    ]


_MISS = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint32, ctypes.POINTER(_Entry))


# The head of the C state that says where the core is (totals at the start of the current block
# and that block); native/blockhook.h repeats it in the UART's deferred-read snapshot.
CURSOR_FIELDS: list[tuple[str, type]] = [
    ("cycles", ctypes.c_uint64),
    ("insns", ctypes.c_uint64),
    ("mem", ctypes.c_uint64),
    ("blocks", ctypes.c_uint64),
    ("cur_addr", ctypes.c_uint64),
    ("cur_size", ctypes.c_uint32),
    ("have_cur", ctypes.c_uint32),
]


class _State(ctypes.Structure):
    _fields_ = [
        *CURSOR_FIELDS,
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
        ("fp", ctypes.c_uint64),
        ("mul", ctypes.c_uint64),
        ("cur_fp", ctypes.c_uint32),
        ("cur_mul", ctypes.c_uint32),
        ("tags", ctypes.c_void_p),
        ("sets", ctypes.c_uint32),
        ("ways", ctypes.c_uint32),
        ("line_shift", ctypes.c_uint32),
        ("miss_cycles", ctypes.c_uint32),
        ("cache_data", ctypes.c_uint32),
        ("data_wait", ctypes.c_uint32),
        ("fetch_lines", ctypes.c_uint64),
        ("fetch_misses", ctypes.c_uint64),
        ("data_reads", ctypes.c_uint64),
        ("data_misses", ctypes.c_uint64),
        ("reg_read", ctypes.c_void_p),
        ("reg_write", ctypes.c_void_p),
        ("reg_r0", ctypes.c_int32),
        ("reg_r1", ctypes.c_int32),
        ("rom_calls", ctypes.c_uint64),
        ("target_extra", ctypes.c_uint32),
        ("data_timing", ctypes.c_uint32),
    ]


class _FlashRegion(ctypes.Structure):
    _fields_ = [("s", ctypes.c_void_p), ("mem", ctypes.c_void_p), ("base", ctypes.c_uint64)]


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
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in (*_SOURCES, *_HEADERS))).hexdigest()
    so = cache_dir() / f"blockhook-{digest[:16]}.so"
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
                    [gcc, "-O2", "-shared", "-fPIC", f"-I{_NATIVE}", "-o", str(out), *map(str, _SOURCES), "-lm", "-lpthread"],
                    capture_output=True,
                    text=True,
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
    fp: int
    mul: int
    fetch_lines: int
    fetch_misses: int
    data_reads: int
    data_misses: int
    rom_calls: int

    data_timing: int  # 0 inside an untimed scope: flash data reads are not charged

    def attach(self, uc: Uc) -> None:
        """Install the block hook on a fresh engine (before its flash is mapped)."""
        raise NotImplementedError

    _mem: MemorySystem

    def map_flash_data(self, uc: Uc, address: int, data: bytearray, offset: int, size: int) -> None:
        """Map ``size`` bytes of flash at ``address`` as an mmio region whose reads return
        ``data[offset:]`` and are charged to the memory-system model (harness/sim/flashmap.py)."""
        raise NotImplementedError

    def forget_blocks(self) -> None:
        """Drop the cached block costs (not the flash cache): the code pages changed, and with
        them which reads a block's entry charges."""
        raise NotImplementedError

    def configure_memory(self, mem: MemorySystem) -> None:
        """Use this cache / flash data cost from now on (cache starts empty)."""
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
            e.fp, e.mul, e.flags = bc.fp, bc.mul, bc.flags
            if bc.literals:  # the arrays outlive the table entries that point at them
                arr = self._lits.get(bc.literals)
                if arr is None:
                    arr = self._lits[bc.literals] = (ctypes.c_uint32 * len(bc.literals))(*bc.literals)
                e.nlits, e.lits = len(bc.literals), ctypes.addressof(arr)

        self._miss = _MISS(miss)
        self._regions: list[_FlashRegion] = []
        self._lits: dict[tuple[int, ...], ctypes.Array[ctypes.c_uint32]] = {}
        self._s.miss = ctypes.cast(self._miss, ctypes.c_void_p).value
        self._s.stop = ctypes.cast(_ucmod.uclib.uc_emu_stop, ctypes.c_void_p).value
        self._s.cycle_limit = NO_LIMIT
        self._s.data_timing = 1
        self._s.reg_read = ctypes.cast(_ucmod.uclib.uc_reg_read, ctypes.c_void_p).value
        self._s.reg_write = ctypes.cast(_ucmod.uclib.uc_reg_write, ctypes.c_void_p).value
        self._s.reg_r0, self._s.reg_r1 = uca.UC_ARM_REG_R0, uca.UC_ARM_REG_R1
        self._hook: ctypes.c_size_t | None = None  # kept so the hook handle outlives attach()
        self._mem = MemorySystem()
        self._tags: ctypes.Array[ctypes.c_uint32] | None = None

    def __getattr__(self, name: str) -> int:
        return getattr(self.__dict__["_s"], name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in _STATE_FIELDS:
            setattr(self._s, name, value)
        else:
            object.__setattr__(self, name, value)

    @property
    def state_address(self) -> int:
        """Address of the C state (bh_state), for other native code that reads the counters."""
        return ctypes.addressof(self._s)

    def attach(self, uc: Uc) -> None:
        h = _ucmod.uc_hook_h()
        fn = ctypes.cast(self._lib.bh_block, ctypes.c_void_p)
        err = _ucmod.uclib.uc_hook_add(
            uc._uch, ctypes.byref(h), UC_HOOK_BLOCK, fn, ctypes.c_void_p(ctypes.addressof(self._s)), 1, 0
        )
        if err != 0:
            raise RuntimeError(f"uc_hook_add failed ({err})")
        self._hook = h
        self._regions = []  # a new engine: the old one's regions go with it

    def map_flash_data(self, uc: Uc, address: int, data: bytearray, offset: int, size: int) -> None:
        mem = ctypes.addressof((ctypes.c_char * size).from_buffer(data, offset))
        region = _FlashRegion(ctypes.addressof(self._s), mem, address)
        err = _ucmod.uclib.uc_mmio_map(
            uc._uch, address, size, ctypes.cast(self._lib.bh_flash_read, ctypes.c_void_p),
            ctypes.addressof(region), None, None,
        )
        if err != 0:
            raise UcError(err)
        self._regions.append(region)  # the callback's user data lives as long as the engine

    def forget_blocks(self) -> None:
        self._lib.bh_clear(ctypes.byref(self._s))

    def configure_memory(self, mem: MemorySystem) -> None:
        self._mem = mem
        c = mem.cache
        if c is None:
            self._tags = None
            self._s.tags = None
        else:
            self._tags = (ctypes.c_uint32 * (c.sets * c.ways))()
            self._s.tags = ctypes.addressof(self._tags)
            self._s.sets, self._s.ways = c.sets, c.ways
            self._s.line_shift, self._s.miss_cycles = c.line_shift, c.miss_cycles
        self._s.cache_data = int(c is not None and c.data)
        self._s.data_wait = mem.data_wait_cycles
        self._s.target_extra = mem.target_extra

    def commit(self, next_address: int) -> None:
        self._lib.bh_commit(ctypes.byref(self._s), next_address)

    def clear_cache(self) -> None:
        self._lib.bh_clear(ctypes.byref(self._s))
        if self._tags is not None:  # a new image: the flash cache is invalid too
            ctypes.memset(self._tags, 0, ctypes.sizeof(self._tags))

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self._lib.bh_free(ctypes.byref(self._s))


class PyCounter(BlockCounter):
    """Pure-Python block hook (same semantics, ~50x slower): used when no C compiler exists."""

    def __init__(self, lookup: Callable[[int, int], BlockCost]):
        self._lookup = lookup
        self._cache: dict[tuple[int, int], BlockCost] = {}
        self.cycles = self.insns = self.mem = self.blocks = self.fp = self.mul = 0
        self.fetch_lines = self.fetch_misses = self.data_reads = self.data_misses = self.rom_calls = 0
        self.cur_addr = self.cur_size = self.have_cur = 0
        self._cur: BlockCost | None = None
        self.cycle_limit = NO_LIMIT
        self.stop_request = self.stopped = 0
        self.data_timing = 1
        self._mem = MemorySystem()
        self._lru: LruCache | None = None

    def configure_memory(self, mem: MemorySystem) -> None:
        self._mem = mem
        self._lru = LruCache(mem.cache) if mem.cache is not None else None

    def attach(self, uc: Uc) -> None:
        uc.hook_add(UC_HOOK_BLOCK, self._hook)

    def map_flash_data(self, uc: Uc, address: int, data: bytearray, offset: int, size: int) -> None:
        def read(uc: Uc, off: int, n: int, _ud: object) -> int:
            if self.data_timing:
                self._data_read(address + off)
            return int.from_bytes(data[offset + off : offset + off + n], "little")

        uc.mmio_map(address, size, read, None, None, None)

    def forget_blocks(self) -> None:
        self._cache.clear()

    def commit(self, next_address: int) -> None:
        if not self.have_cur or self._cur is None:
            return
        bc = self._cur
        self.cycles += bc.cycles
        self.insns += bc.insns
        self.mem += bc.mem
        self.fp += bc.fp
        self.mul += bc.mul
        if next_address != self.cur_addr + self.cur_size:
            self.cycles += bc.penalty
        self.have_cur = 0

    def _data_read(self, address: int) -> None:
        self.data_reads += 1
        if self._lru is not None and self._lru.spec.data:
            if not self._lru.access(address):
                self.cycles += self._lru.spec.miss_cycles
                self.data_misses += 1
        else:
            self.cycles += self._mem.data_wait_cycles

    def _hook(self, uc: Uc, address: int, size: int, _user: object) -> None:
        key = (address, size)
        bc = self._cache.get(key)
        if bc is None:
            bc = self._cache[key] = self._lookup(address, size)
        cur = self._cur
        taken = self.have_cur and cur is not None and cur.penalty and address != self.cur_addr + self.cur_size
        if taken and bc.flags & 2:  # refill of a 32-bit target at an odd halfword
            self.cycles += self._mem.target_extra
        self.commit(address)
        if self.stop_request or self.cycles >= self.cycle_limit:
            self.stopped = 2 if self.stop_request else 1
            uc.emu_stop()
            return
        self._cur = bc
        self.cur_addr, self.cur_size, self.have_cur = address, size, 1
        self.blocks += 1
        if bc.flags & 1 and self._lru is not None and self.data_timing:  # untimed: no fetch charges
            lru = self._lru
            for line in range(address >> lru.spec.line_shift, (address + max(size, 1) - 1 >> lru.spec.line_shift) + 1):
                self.fetch_lines += 1
                if not lru.access_line(line):
                    self.cycles += lru.spec.miss_cycles
                    self.fetch_misses += 1
        if self.data_timing:
            for a in bc.literals:
                self._data_read(a)
        if bc.flags >> 8:
            r0, r1 = uc.reg_read(uca.UC_ARM_REG_R0), uc.reg_read(uca.UC_ARM_REG_R1)
            uc.reg_write(uca.UC_ARM_REG_R0, rom_float_op((bc.flags >> 8) & 0xFF, r0, r1))
            self.rom_calls += 1

    def clear_cache(self) -> None:
        self._cache.clear()
        if self._lru is not None:
            self._lru.clear()


def make_counter(lookup: Callable[[int, int], BlockCost], prefer_native: bool = True) -> BlockCounter:
    if prefer_native and native_library() is not None:
        return NativeCounter(lookup)
    return PyCounter(lookup)
