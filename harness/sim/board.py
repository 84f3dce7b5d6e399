"""One emulated Cortex-M board (docs/sim-board.md): Unicorn core, persistent flash, RAM, CMSDK
UART on TCP, benchmark GPIO, SysTick/DWT from the cycle model, power segments on a SignalBus.

Execution runs in slices bounded by a cycle limit enforced by the block hook, so halts, resets,
budgets and power flushes happen between blocks. ``run()`` executes synchronously with budgets
(SimFault/SimTimeout on failure); ``start()`` runs the board in its own thread until ``stop()``
(a fault then halts the board and is kept in ``error``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from unicorn import (
    UC_ARCH_ARM,
    UC_ERR_EXCEPTION,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_INSN_INVALID,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_MEM_INVALID,
    UC_MODE_MCLASS,
    UC_MODE_THUMB,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
    UC_PROT_WRITE,
    Uc,
    UcError,
)
from unicorn import arm_const as uca

from harness.config.board import BoardConfig
from harness.sim import exitguard, romfloat
from harness.sim.counter import NO_LIMIT, NativeCounter, make_counter
from harness.sim.cycles import BlockCost, get_model
from harness.sim.debugunit import DebugUnit
from harness.sim.decode import BlockDecoder
from harness.sim.errors import SimError, SimFault, SimImageError, SimTimeout
from harness.sim.flashmap import FlashMap
from harness.sim.flashstore import FlashStore
from harness.sim.loader import load_segments
from harness.sim.memmodel import MemorySystem
from harness.sim.mmio import PPB_BASE, PPB_SIZE, Mmio
from harness.sim.power import PowerModel
from harness.sim.signals import SignalBus
from harness.sim.uart import UartServer
from harness.sim.uartregs import NativeUart

SLICE_CYCLES = 4_000_000
PARK_POLL_S = 0.05

_CPU_MODEL = {
    "cortex-m0plus": uca.UC_CPU_ARM_CORTEX_M0,
    "cortex-m4": uca.UC_CPU_ARM_CORTEX_M4,
    "cortex-m4f": uca.UC_CPU_ARM_CORTEX_M4,
    "cortex-m7": uca.UC_CPU_ARM_CORTEX_M7,
}
_FAULT_REASON = {
    UC_ERR_READ_UNMAPPED: "read from unmapped address",
    UC_ERR_WRITE_UNMAPPED: "write to unmapped address",
    UC_ERR_FETCH_UNMAPPED: "jump to unmapped address",
    UC_ERR_FETCH_PROT: "jump to non-executable address",
    UC_ERR_WRITE_PROT: "write to read-only flash at",
    UC_ERR_INSN_INVALID: "undefined instruction",
    UC_ERR_EXCEPTION: "unhandled CPU exception (e.g. jump without the Thumb bit, SVC, BKPT)",
}


_LIVE: weakref.WeakSet[SimBoard] = weakref.WeakSet()  # boards that started an emulation thread
_EXIT_HOOKED = False


def _stop_live_boards() -> None:
    """At interpreter exit, stop every emulation thread before anything closes a Unicorn instance.

    Unicorn's binding closes each instance through ``weakref.finalize``, whose atexit hook calls
    ``uc_close`` on every live instance at exit, also on one that a daemon thread is executing:
    that crashed processes ended by Ctrl-C or SIGTERM while a board ran (segfaults in libunicorn,
    heap corruption). atexit handlers run last-registered first, so this one is registered when
    the first board thread starts, i.e. after the weakref hook (the board's Unicorn exists).
    Debugger threads (a pyOCD flash still programming when the signal came) are shut out first
    (harness/sim/exitguard.py)."""
    exitguard.mark_exiting()
    for board in list(_LIVE):
        board.stop()


def _hook_exit() -> None:
    global _EXIT_HOOKED
    if not _EXIT_HOOKED:
        _EXIT_HOOKED = True
        atexit.register(_stop_live_boards)


def _align_up(n: int, a: int = 0x1000) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class RunResult:
    reason: str  # 'until', 'halted' or 'exit' (semihosting SYS_EXIT)
    cycles: int
    insns: int
    wall_s: float


class SimBoard:
    """An emulated board built from a sim-* BoardConfig."""

    def __init__(
        self,
        config: BoardConfig,
        *,
        state_dir: Path | None = None,
        persist: bool = True,
        native: bool = True,
        native_uart: bool | None = None,
    ):
        """``native``: the C block hook when the host can build it (else the Python one);
        ``native_uart`` (default: with the C hook) serves the UART registers in C too."""
        if config.sim is None:
            raise SimError(f"{config.name}: board has no [sim] section; it cannot be emulated")
        self.config, self.name, self.sim = config, config.name, config.sim
        self.clock_hz = config.clock_hz
        mem = config.memory
        self.flash = FlashStore(config.name, mem.flash_base, mem.flash_size, state_dir, persist)
        self.ram = bytearray(_align_up(mem.ram_size))
        self._flash_view = (ctypes.c_char * len(self.flash.data)).from_buffer(self.flash.data)
        self._ram_view = (ctypes.c_char * len(self.ram)).from_buffer(self.ram)
        self.bus = SignalBus(config.supply.nominal_v, self.sim.idle_current_a)
        model = get_model(self.sim.cycle_model)
        self.memory = MemorySystem.for_board(
            self.sim, mem.flash_base, mem.flash_size, target_extra=model.unaligned_target_extra
        )
        self.decoder = BlockDecoder(
            model,
            (mem.flash_base, mem.flash_base + mem.flash_size),
            self.memory.fetch_wait_states,
            core=config.core,  # instructions the core lacks fault (harness/sim/decode.py)
        )
        self._rom = bytearray(romfloat.rom_image()) if self.sim.rom_float else None
        if self._rom is not None and mem.flash_base < romfloat.ROM_BASE + romfloat.ROM_SIZE:
            raise SimError(f"{config.name}: rom_float needs the boot ROM at 0, but flash starts at {mem.flash_base:#x}")
        self._rom_stubs = romfloat.stub_costs() if self.sim.rom_float else {}
        self.counter = make_counter(self._block_cost, prefer_native=native)
        self.counter.configure_memory(self.memory)
        self.uart_regs: NativeUart | None = None
        if native_uart is not False and isinstance(self.counter, NativeCounter):
            self.uart_regs = NativeUart(self.counter)
        self.uart = UartServer(config.name, fifo=self.uart_regs)
        self.flash_map = FlashMap(
            mem.flash_base,
            self.flash.data,
            ctypes.addressof(self._flash_view),
            split=self.memory.charges_flash_data,  # flash data reads cost something: serve them through mmio
            map_data=lambda uc, address, offset, size: self.counter.map_flash_data(
                uc, address, self.flash.data, offset, size
            ),
        )
        self.power = PowerModel(self.sim, self.clock_hz, self.bus, self.counter)
        self.mmio = Mmio(self)
        self.systick, self.dwt, self.scb = self.mmio.systick, self.mmio.dwt, self.mmio.scb
        self.error: SimError | None = None
        self.state = "halted"  # running | halted | faulted
        self.parked_wall_s = 0.0
        self._uc: Uc | None = None
        self._cv = threading.Condition(threading.RLock())
        self._want_halt = self._want_stop = self._reset_pending = False
        self._thread: threading.Thread | None = None
        self._served = threading.Event()  # set when _serve returns (join is unreliable after a signal)
        self._deadline: float | None = None
        self._until: Callable[[], bool] | None = None
        self._bad_access: int | None = None
        self._halt_after_reset = False
        self.blank = True
        self.debug = DebugUnit(self)  # halting debug: step, breakpoints, watchpoints (debugport.py)
        self._untimed = 0  # open untimed() scopes
        self._untimed_lock = threading.Lock()
        self._reset_core()

    def _block_cost(self, address: int, size: int) -> BlockCost:
        """The decoder's cost plus what the memory system decides per block (memmodel.py):
        fetched through the flash cache, or a ROM float entry with its published cost."""
        cost = self.decoder.cost(address, size)
        first_size = cost.addresses[1] - address if cost.insns > 1 else size
        if address & 2 and first_size == 4:
            cost = replace(cost, flags=cost.flags | 2)
        lo, hi = self.memory.flash_range
        if self.memory.cache is not None and lo <= address < hi:
            cost = replace(cost, flags=cost.flags | 1)
        if self.flash_map.split:  # reads of code pages never reach the mmio callback: charge them here
            lits = self.decoder.block(address, size).literals
            lits = tuple(a for a in lits if lo <= a < hi and self.flash_map.is_code(a))
            if lits:
                cost = replace(cost, literals=lits)
        rom_op = self._rom_stubs.get(address)
        if rom_op is not None:
            body = max(1, rom_op.cycles - romfloat.CALL_OVERHEAD)
            cost = replace(cost, cum_cycles=(body,), flags=cost.flags | rom_op.op << 8)
        return cost

    # -- properties ----------------------------------------------------------------------
    @property
    def cycles(self) -> int:
        return self.counter.cycles

    @property
    def insns(self) -> int:
        return self.counter.insns

    @property
    def time_s(self) -> float:
        return self.counter.cycles / self.clock_hz

    @property
    def native(self) -> bool:
        return self.counter.native

    @property
    def serial_url(self) -> str:
        self.uart.start()
        return self.uart.url

    @property
    def pc(self) -> int:
        assert self._uc is not None
        return self._uc.reg_read(uca.UC_ARM_REG_PC)

    @contextlib.contextmanager
    def untimed(self) -> Iterator[None]:
        """Emulate without the flash timing while the scope is open: flash data reads and
        instruction-cache misses are not charged (the firmware computes exactly the same
        results, 1.3-2x faster),
        so cycle counts, and so latency and energy, come out too low. For work whose time and
        power nobody reads, such as checking outputs on hundreds of inputs; the data cache is
        left colder than it would be, which the warm-up inference of a measurement refills."""
        with self._untimed_lock:  # not _cv: the emulating thread holds that while it waits for the host
            self._untimed += 1
            self.counter.data_timing = 0  # a flag the read callback checks: effective at once
        self.counter.stop_request = 1  # the next slice serves the data pages as plain memory (faster)
        try:
            yield
        finally:
            with self._untimed_lock:
                self._untimed -= 1
                self.counter.data_timing = int(self._untimed == 0)
            self.counter.stop_request = 1  # and through the read callback again

    @property
    def timed(self) -> bool:
        """False while an untimed() scope is open: the cycle count is not an estimate of time."""
        return self._untimed == 0

    # -- programming ---------------------------------------------------------------------
    def program(self, path: str | Path, *, reset: bool = True) -> None:
        """Write an ELF/HEX/BIN image into flash (persisted), then reset the core."""
        segments = load_segments(path, self.config.program_base)
        with self._cv:
            for addr, data in segments:
                if not self.flash.contains(addr, len(data)):
                    raise SimImageError(
                        f"{self.name}: image {Path(path).name} has {len(data)} bytes at {addr:#010x}, outside "
                        f"flash {self.flash.base:#010x}-{self.flash.base + self.flash.size - 1:#010x}"
                    )
            for addr, data in segments:
                self.flash.write(addr, data)
            self.flash.save()
            self.flash_map.forget()
        if reset:
            self.reset()

    # -- engine --------------------------------------------------------------------------
    def _reset_core(self) -> None:
        """Fresh CPU (new Unicorn instance) on the same flash/RAM; time keeps running."""
        c = self.counter
        if c.have_cur and self._uc is not None:
            self._commit_partial(self._uc.reg_read(uca.UC_ARM_REG_PC))
        mem = self.config.memory
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(_CPU_MODEL[self.config.core])
        c.attach(uc)
        self.flash_map.map(uc, plain_data=self._untimed > 0)
        # RAM is mapped without execute permission and outside the invalid-access hook: Unicorn
        # 2.1 never marks RAM dirty, so every store takes its slow path, and on a page mapped
        # executable it also runs the self-modifying-code check (a tenth of the emulation time;
        # docs/sim-board.md). A first fetch from RAM makes it executable (emu_start).
        uc.mem_map_ptr(mem.ram_base, len(self.ram), UC_PROT_READ | UC_PROT_WRITE, ctypes.addressof(self._ram_view))
        self._ram_exec = False
        if self._rom is not None:
            uc.mem_map(romfloat.ROM_BASE, romfloat.ROM_SIZE, UC_PROT_READ | UC_PROT_EXEC)
            uc.mem_write(romfloat.ROM_BASE, bytes(self._rom))
        self.mmio.map_periph(uc)
        uc.mmio_map(PPB_BASE, PPB_SIZE, self.mmio.ppb_read, None, self.mmio.ppb_write, None)
        ram_end = mem.ram_base + len(self.ram)
        if mem.ram_base > 0:
            uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid, begin=0, end=mem.ram_base - 1)
        uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid, begin=ram_end, end=0xFFFFFFFF)
        c.have_cur = 0
        c.stop_request = 0
        c.clear_cache()
        self.decoder.clear()
        self.decoder.bind(uc)
        c.data_timing = int(self._untimed == 0)
        self.debug.attach(uc)
        vtor = self.config.program_base
        sp, pc = (int.from_bytes(self.flash.read(vtor + i, 4), "little") for i in (0, 4))
        uc.reg_write(uca.UC_ARM_REG_MSP, sp)
        uc.reg_write(uca.UC_ARM_REG_SP, sp)
        uc.reg_write(uca.UC_ARM_REG_PC, pc & ~1)
        self.blank = pc == 0xFFFFFFFF
        self.mmio.reset(vtor)
        self.power.reset_marks(c.cycles, c.insns, c.mem)
        self._uc = uc
        self.error = None

    def _commit_partial(self, pc: int) -> None:
        """Account the instructions of the current block that ran before ``pc``."""
        c = self.counter
        if not c.have_cur:
            return
        cost = self.decoder.cost(c.cur_addr, c.cur_size)
        if pc in cost.addresses and pc != c.cur_addr + c.cur_size:
            i = cost.addresses.index(pc)
            if i > 0:
                c.cycles += cost.cum_cycles[i - 1]
                c.insns += i
                c.mem += cost.cum_mem[i - 1]
            c.have_cur = 0
        else:
            c.commit(pc)

    def _on_invalid(self, uc: Uc, access: int, address: int, size: int, value: int, _ud: object) -> bool:
        self._bad_access = address
        return False

    def _is_semihosting_exit(self, err: UcError) -> bool:
        """``bkpt 0xab`` with r0 = SYS_EXIT (0x18): the firmware asks to end the run."""
        assert self._uc is not None
        if err.errno != UC_ERR_EXCEPTION:
            return False
        pc = self._uc.reg_read(uca.UC_ARM_REG_PC)
        try:
            code = bytes(self._uc.mem_read(pc, 2))
        except UcError:
            return False
        return code == b"\xab\xbe" and self._uc.reg_read(uca.UC_ARM_REG_R0) in (0x18, 0x20)

    def _fault(self, err: UcError) -> SimFault:
        assert self._uc is not None
        uc = self._uc
        pc = uc.reg_read(uca.UC_ARM_REG_PC)
        c = self.counter
        reason = _FAULT_REASON.get(err.errno, str(err))
        address = self._bad_access
        if err.errno in (UC_ERR_FETCH_UNMAPPED, UC_ERR_FETCH_PROT):
            # report the branch that jumped there, not the unreadable target
            address = pc
            if c.have_cur:
                blk = self.decoder.block(c.cur_addr, c.cur_size)
                pc = blk.cost.addresses[-1]
                text = blk.text[-1]
                c.commit(address)
                return SimFault(self.name, pc, text, reason, address)
        self._commit_partial(pc)
        try:
            code = bytes(uc.mem_read(pc, 4))
            text = self.decoder.disassemble(code, pc)
        except UcError:
            text = "<unreadable>"
        if err.errno == UC_ERR_INSN_INVALID:
            address = None
        return SimFault(self.name, pc, text, reason, address)

    def _slice(self, limit: int) -> str:
        assert self._uc is not None
        c = self.counter
        c.cycle_limit = limit
        c.stopped = 0
        self._bad_access = None
        self.debug.apply_pending()  # breakpoints/watchpoints changed while running
        if self._want_halt or self._want_stop:  # a request whose stop_request a reset cleared
            c.stop_request = 1
        self.flash_map.set_plain_data(self._uc, self._untimed > 0)  # an untimed() scope opened or closed
        try:
            self.emu_start()
        except UcError as err:
            if self._is_semihosting_exit(err):
                self._commit_partial(self._uc.reg_read(uca.UC_ARM_REG_PC))
                return "exit"
            if self.debug.bkpt_halt(err):
                return "stopped"
            self.debug.latch_fault(err)
            raise self._fault(err) from None
        bad = self.decoder.take_pending()
        if bad is not None:  # an instruction this core does not implement (decode.py)
            c.have_cur = 0
            raise SimFault(self.name, bad.pc, bad.text, bad.fault)
        if c.stopped:
            c.stopped = 0
            return "stopped"
        self._commit_partial(self._uc.reg_read(uca.UC_ARM_REG_PC))
        return "stopped" if self._want_halt else "wfi"  # a breakpoint/watchpoint stops mid-block

    def _claim_ram_code(self, pc: int) -> bool:
        """The core fetched from RAM (not executable until now; no hook saw it, so the fault
        names no address): make all of RAM executable and run on. Code in RAM is rare (copied
        to RAM by its startup); its stores then pay Unicorn's code-page checks."""
        mem = self.config.memory
        if self._ram_exec or self._uc is None:
            return False
        ram_end = mem.ram_base + len(self.ram)
        current = self._uc.reg_read(uca.UC_ARM_REG_PC)
        if not any(mem.ram_base <= a < ram_end for a in (pc, current, current + 2)):
            return False
        self._uc.mem_protect(mem.ram_base, len(self.ram), UC_PROT_ALL)
        self._ram_exec = True
        return True

    def emu_start(self, count: int = 0) -> None:
        """Run the core from its PC; a first fetch from a flash page served as data makes that
        page code and restarts at the same PC (harness/sim/flashmap.py)."""
        assert self._uc is not None
        while True:
            pc = self._uc.reg_read(uca.UC_ARM_REG_PC)
            try:
                self._uc.emu_start(pc | 1, 0xFFFFFFFF, count=count)
                return
            except UcError as err:
                bad = self._bad_access
                if err.errno == UC_ERR_FETCH_PROT and bad is None and self._claim_ram_code(pc):
                    continue
                if err.errno != UC_ERR_FETCH_PROT or bad is None or not self.flash_map.claim_code(self._uc, bad):
                    raise
                self._bad_access = None
                self.counter.forget_blocks()  # literal charges depend on which pages are code

    # -- sleeping (also called by Mmio while the firmware polls for input) ----------------
    def _park(self, wake: Callable[[], bool]) -> bool:
        """Wait (wall clock, idle current) until ``wake()`` or a halt/stop/deadline; True if woken.

        Simulated time and the idle segment advance every poll, so instruments watching the
        bus see time pass while the firmware waits for the host."""
        self.uart.collect()  # the firmware waits: what it wrote is a complete reply
        last = time.monotonic()
        while True:
            if wake():
                return True
            if self._want_halt or self._want_stop or self._reset_pending:
                return False
            if self._deadline is not None and time.monotonic() >= self._deadline:
                return False
            if self._until is not None and self._until():
                self.counter.stop_request = 1  # let run() return at the next block boundary
                return False
            self.uart.wait_rx(PARK_POLL_S)
            now = time.monotonic()
            waited, last = now - last, now
            self.parked_wall_s += waited
            n = int(waited * self.clock_hz)
            # An instrument waiting for a later time: the parked core does nothing but draw
            # idle current until then, so jump ahead (discrete-event style) instead of waiting.
            ahead = int((self.bus.requested_s - self.time_s) * self.clock_hz) + 1
            n = max(n, ahead)
            self.counter.add_cycles(n)
            self.power.idle(n)

    def _wfi(self) -> None:
        c = self.counter
        self.power.active(c.cycles, c.insns, c.mem)
        st = self.systick
        n = st.cycles_to_next_zero(c.cycles) if st.enable and st.tickint else None
        if n is not None:
            c.add_cycles(n)
            self.power.idle(n)
        else:  # no timer wake-up: sleep until the host sends a byte (a UART interrupt would wake it)
            self._park(self.uart.rx_available)

    def request_reset(self) -> None:
        """SYSRESETREQ from the firmware: reset before the next block."""
        self._reset_pending = True
        self.counter.stop_request = 1

    # -- execution -----------------------------------------------------------------------
    def _execute(
        self, max_cycles: int | None, wall_timeout_s: float | None, until: Callable[[], bool] | None
    ) -> RunResult:
        c = self.counter
        t0 = time.monotonic()
        self._deadline = t0 + wall_timeout_s if wall_timeout_s is not None else None
        limit_abs = c.cycles + max_cycles if max_cycles is not None else NO_LIMIT
        next_watch = t0
        self._until = until
        try:
            while True:
                with self._cv:
                    if self._want_stop or self._want_halt:
                        return RunResult("halted", c.cycles, c.insns, time.monotonic() - t0)
                    c.stop_request = 0
                    if self._reset_pending:
                        self._reset_pending = False
                        self._reset_core()
                        if self._halt_after_reset:
                            return RunResult("halted", c.cycles, c.insns, time.monotonic() - t0)
                    now = time.monotonic()
                    if now >= next_watch:
                        next_watch = now + 0.25
                        if not self.flash.dirty and self.flash.changed_on_disk():  # programmed elsewhere
                            self.flash.reload()
                            self.flash_map.forget()
                            self._reset_core()
                    try:
                        why = self._slice(min(c.cycles + SLICE_CYCLES, limit_abs))
                    finally:
                        self.power.active(c.cycles, c.insns, c.mem)
                        self.uart.collect()  # output without a newline reaches the host too
                    if why == "wfi":
                        self._wfi()
                    elif why == "exit":
                        return RunResult("exit", c.cycles, c.insns, time.monotonic() - t0)
                if until is not None and until():
                    return RunResult("until", c.cycles, c.insns, time.monotonic() - t0)
                if c.cycles >= limit_abs:
                    raise SimTimeout(
                        self.name, self.pc, c.cycles, time.monotonic() - t0, f"cycle budget of {max_cycles}"
                    )
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    raise SimTimeout(
                        self.name,
                        self.pc,
                        c.cycles,
                        time.monotonic() - t0,
                        f"wall-clock budget of {wall_timeout_s} s",
                    )
        finally:
            self._deadline = None
            self._until = None

    def run(
        self,
        max_cycles: int | None = None,
        wall_timeout_s: float | None = 10.0,
        until: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Run in the calling thread until ``until()`` is true (checked between slices and after
        sleeps), a halt, or a budget is exceeded (SimTimeout); a fault raises SimFault."""
        if self._running_thread():
            raise SimError(f"{self.name}: board is running in its own thread; use halt()/resume()")
        if self.blank:
            raise SimError(f"{self.name}: flash is erased (no firmware programmed)")
        with self._cv:
            self._want_halt = self._want_stop = False
            self.state = "running"
        try:
            return self._execute(max_cycles, wall_timeout_s, until)
        except SimError as exc:
            self.error = exc
            self.state = "faulted"
            raise
        finally:
            if self.state == "running":
                self.state = "halted"

    # -- background thread ---------------------------------------------------------------
    def start(self) -> SimBoard:
        """Run the board in its own thread (and serve its UART) until stop()."""
        if exitguard.exiting():  # never start emulating while the interpreter shuts down
            return self
        self.uart.start()
        if self._running_thread():
            return self
        _LIVE.add(self)
        _hook_exit()
        self._want_stop = False
        self._served.clear()
        with self._cv:
            if self.state == "halted" and not self.blank:  # erased flash stays halted until programmed
                self.state = "running"
        self._thread = threading.Thread(target=self._serve, name=f"sim-board-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        try:
            self._serve_loop()
        finally:
            self._served.set()

    def _serve_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(
                    lambda: self._want_stop or (self.state == "running" and not self._want_halt), timeout=0.25
                )
                if self._want_stop:
                    return
                if not self.flash.dirty and self.flash.changed_on_disk():
                    # programmed by another process (e.g. the pyocd CLI): boot the new image
                    self.flash.reload()
                    self.flash_map.forget()
                    self._reset_core()
                    self.state = "running"
                if self._want_halt:  # acknowledge a halt requested while not executing
                    self._want_halt = False
                    if self.state == "running":
                        self.state = "halted"
                    self._cv.notify_all()
                    continue
                if self.state != "running":
                    continue
                if self.blank:
                    self.state = "halted"  # erased flash: nothing to run until programmed
                    self._cv.notify_all()
                    continue
            try:
                res = self._execute(None, None, None)
            except SimError as exc:
                with self._cv:
                    self.error, self.state = exc, "faulted"
                    self._cv.notify_all()
                continue
            with self._cv:
                if res.reason in ("halted", "exit"):
                    self.state = "halted"
                    self._want_halt = False
                    self._halt_after_reset = False
                    self._cv.notify_all()

    def _running_thread(self) -> bool:
        return self._thread is not None and not self._served.is_set()

    def halt(self, timeout: float = 5.0) -> None:
        if self.state != "running":
            return
        if not self._running_thread():
            with self._cv:
                self.state = "halted"
            return
        self._want_halt = True  # set before taking the lock: the emulation holds it during a slice
        self.counter.stop_request = 1
        with self._cv:
            self._cv.notify_all()
            if not self._cv.wait_for(lambda: self.state != "running", timeout):
                raise SimError(f"{self.name}: core did not halt within {timeout} s")

    def resume(self) -> None:
        with self._cv:
            if self.state == "halted":
                self.state = "running"
                self._cv.notify_all()

    def reset(self, halt: bool = False) -> None:
        """System reset (SYSRESETREQ); with ``halt`` the core stops at the reset vector."""
        was_running = self.state == "running"
        self.halt()
        with self._cv, exitguard.engine_access(self.name):  # builds the core's new engine
            self._reset_core()
            self.state = "halted"
            if not halt and (was_running or self._running_thread()):
                self.state = "running"
            self._cv.notify_all()

    def stop(self) -> None:
        """Stop the thread and the UART server."""
        self._want_stop = True
        self.counter.stop_request = 1
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            if not self._served.wait(timeout=5):
                # Still emulating: leave it the stop request, never mark it halted (a debugger
                # would then touch a core that runs, which crashed libunicorn).
                return
            self._thread = None
        self.uart.stop()
        with self._cv:
            if self.state == "running":
                self.state = "halted"
            self._want_stop = False

    # -- debugger access (no side effects on peripherals) --------------------------------
    def _region(self, address: int, length: int) -> tuple[bytearray, int] | None:
        mem = self.config.memory
        if self.flash.contains(address, length):
            return self.flash.data, address - mem.flash_base
        if mem.ram_base <= address and address + length <= mem.ram_base + len(self.ram):
            return self.ram, address - mem.ram_base
        rom_end = romfloat.ROM_BASE + romfloat.ROM_SIZE
        if self._rom is not None and address >= romfloat.ROM_BASE and address + length <= rom_end:
            return self._rom, address - romfloat.ROM_BASE
        return None

    def debug_read(self, address: int, length: int) -> bytes:
        region = self._region(address, length)
        if region is not None:
            buf, off = region
            return bytes(buf[off : off + length])
        out = bytearray()
        for a in range(address & ~3, address + length, 4):
            out += self.peek32(a).to_bytes(4, "little")
        skip = address & 3
        return bytes(out[skip : skip + length])

    def peek32(self, address: int) -> int:
        try:
            return self.mmio.peek32(address)
        except KeyError:
            raise SimError(f"{self.name}: debug read of unmapped address {address:#010x}") from None

    def debug_write(self, address: int, data: bytes) -> None:
        region = self._region(address, len(data))
        if region is None:
            if PPB_BASE <= address < PPB_BASE + PPB_SIZE and len(data) == 4:
                if self.scb.write(address, int.from_bytes(data, "little")):
                    self.reset()
                return
            raise SimError(
                f"{self.name}: debug write of {len(data)} bytes to unmapped address {address:#010x}"
            )
        buf, off = region
        if buf is self._rom:
            raise SimError(f"{self.name}: {address:#010x} is in the read-only boot ROM")
        if buf is self.flash.data and self.state == "running" and self._running_thread():
            raise SimError(f"{self.name}: halt the core before writing flash at {address:#010x}")
        buf[off : off + len(data)] = data
        if buf is self.flash.data:
            self.flash.dirty = True
            self.flash_map.forget()  # a new image may put data where code was
            if self._uc is not None:
                with exitguard.engine_access(self.name):
                    self._uc.ctl_remove_cache(address, address + len(data))
                self.counter.clear_cache()
                self.decoder.clear()

    def read_core_register(self, reg: int) -> int:
        """Unicorn register ``reg`` (meaningful while halted, as through a real DCRSR)."""
        assert self._uc is not None
        with exitguard.engine_access(self.name):
            return self._uc.reg_read(reg)

    def write_core_register(self, reg: int, value: int) -> None:
        assert self._uc is not None
        if self.state == "running" and self._running_thread():
            raise SimError(f"{self.name}: halt the core before writing its registers")
        with exitguard.engine_access(self.name):
            self._uc.reg_write(reg, value)
