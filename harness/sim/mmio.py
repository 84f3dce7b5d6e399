"""The memory-mapped blocks of docs/sim-board.md as the firmware sees them (Unicorn mmio
callbacks): CMSDK UART0, FPGAIO LED (benchmark GPIO), SIM_ID, SysTick, DWT and SCB.

Accesses that need time (GPIO edges, counter reads) locate the accessing instruction in the
current block (``BlockDecoder.locate``) so they are stamped to the instruction, not the block.

With the native block hook the UART's DATA/STATE/CTRL registers are served in C
(harness/sim/uartregs.py) and only the rest of the UART page, and empty STATE reads that may
be an RX poll loop, come here; the first empty STATE read in a row is answered in C and placed
here later (``_place_deferred``), in order, as if it had come at the time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from unicorn import Uc

from harness.sim.decode import Position
from harness.sim.peripherals import CPUID, DWT_BASE, SYST_BASE, Dwt, Scb, SysTick
from harness.sim.uartregs import PAGE, POLL_CANCELLED, POLL_DEFERRED, POLL_NONE, POLL_PYTHON

if TYPE_CHECKING:
    from harness.sim.board import SimBoard

PERIPH_BASE, PERIPH_SIZE = 0x40000000, 0x20000000
PPB_BASE, PPB_SIZE = 0xE0000000, 0x00100000
UART_BASE, GPIO_BASE = 0x40004000, 0x40028000
SIM_ID_BASE, SIM_ID_SIZE = 0x4002F000, 32  # board name, NUL-padded ASCII (read-only)
POLL_WINDOW_CYCLES = 200  # two empty STATE reads this close together at one pc = an RX poll loop
assert UART_BASE % PAGE == 0  # the native UART registers are a page of their own

ReadCb = Callable[[Uc, int, int, object], int]
WriteCb = Callable[[Uc, int, int, int, object], None]


class Mmio:
    def __init__(self, board: SimBoard):
        self.board = board
        self.regs = board.uart_regs  # None: the UART registers are served here (Python path)
        self.systick, self.dwt = SysTick(), Dwt()
        self.scb = Scb(CPUID[board.config.core], v7m=board.config.core != "cortex-m0plus")
        self.led = 0
        self._uart_ctrl = 0
        self._poll: tuple[int, int] | None = None  # (pc, cycle) of the last empty STATE read
        self._sim_id_bytes = board.name.encode()[: SIM_ID_SIZE - 1].ljust(SIM_ID_SIZE, b"\0")

    def map_periph(self, uc: Uc) -> None:
        """Map the peripheral window on a new engine: all of it here, or the UART page in C."""
        if self.regs is None:
            uc.mmio_map(PERIPH_BASE, PERIPH_SIZE, self.periph_read, None, self.periph_write, None)
            return
        lo, hi = UART_BASE - PERIPH_BASE, UART_BASE - PERIPH_BASE + PAGE
        uc.mmio_map(PERIPH_BASE, lo, *self._window(0))
        self.regs.map(uc, UART_BASE, lo, self.periph_read, self.periph_write)
        uc.mmio_map(PERIPH_BASE + hi, PERIPH_SIZE - hi, *self._window(hi))

    def _window(self, start: int) -> tuple[ReadCb, None, WriteCb, None]:
        """periph_read/_write for a region ``start`` bytes into the peripheral window."""

        def read(uc: Uc, offset: int, size: int, ud: object) -> int:
            return self.periph_read(uc, start + offset, size, ud)

        def write(uc: Uc, offset: int, size: int, value: int, ud: object) -> None:
            self.periph_write(uc, start + offset, size, value, ud)

        return read, None, write, None

    @property
    def uart_ctrl(self) -> int:
        return self.regs.ctrl if self.regs is not None else self._uart_ctrl

    @uart_ctrl.setter
    def uart_ctrl(self, value: int) -> None:
        if self.regs is not None:
            self.regs.ctrl = value
        self._uart_ctrl = value

    # -- the last empty STATE read (RX poll detection) ------------------------------------------
    def _last_poll(self) -> tuple[int, int] | None:
        if self.regs is None:
            return self._poll
        self._place_deferred()
        return self._poll if self.regs.poll == POLL_PYTHON else None

    def _set_poll(self, pos: Position) -> None:
        self._poll = (pos.pc, pos.cycles)
        if self.regs is not None:
            self.regs.poll = POLL_PYTHON

    def _end_poll(self) -> None:
        """Any UART access but an empty STATE read (a deferred read not yet placed stays kept
        for the decoder's cursor, as in uartregs.c)."""
        self._poll = None
        if self.regs is not None:
            state = self.regs.poll
            if state == POLL_DEFERRED:
                self.regs.poll = POLL_CANCELLED
            elif state == POLL_PYTHON:
                self.regs.poll = POLL_NONE

    def _place_deferred(self) -> None:
        """Locate an empty STATE read the C side answered, with the counters and registers of
        its time: its pc and cycle become the last poll, and the decoder's cursor moves as it
        would have then (a cancelled one matters only while its block is still current)."""
        regs = self.regs
        if regs is None or regs.poll not in (POLL_DEFERRED, POLL_CANCELLED):
            return
        state, snap = regs.poll, regs.snapshot()
        if state == POLL_DEFERRED or snap.blocks == self.board.counter.blocks:
            pos = self.board.decoder.locate(snap, snap, snap.address)
            if state == POLL_DEFERRED:
                self._set_poll(pos)
                return
        regs.poll = POLL_NONE

    def reset(self, vtor: int) -> None:
        b = self.board
        self.systick.reset()
        self.dwt.reset()
        self.scb.reset(vtor)
        self.uart_ctrl = 0
        self._poll = None
        if self.regs is not None:
            self.regs.poll = POLL_NONE
        if self.led & 1:
            b.bus.add_edge(b.time_s, 0, b.cycles)
        self.led = 0

    def _pos(self, uc: Uc, address: int) -> Position:
        self._place_deferred()  # an earlier access first: the decoder's cursor moves in order
        return self.board.decoder.locate(uc, self.board.counter, address)

    def sim_id(self, reg: int) -> int:
        if SIM_ID_BASE <= reg < SIM_ID_BASE + SIM_ID_SIZE:
            off = reg - SIM_ID_BASE
            return int.from_bytes(self._sim_id_bytes[off : off + 4], "little")
        return 0

    # -- 0x4000_0000 - 0x5FFF_FFFF ---------------------------------------------------------
    def periph_read(self, uc: Uc, offset: int, size: int, _ud: object) -> int:
        b = self.board
        address = PERIPH_BASE + offset
        reg = address & ~3
        if reg == UART_BASE + 0x4:
            if b.uart.rx_available():
                self._end_poll()
                return 2
            pos = self._pos(uc, address)
            last = self._last_poll()
            self._set_poll(pos)
            if last is not None and last[0] == pos.pc and pos.cycles - last[1] <= POLL_WINDOW_CYCLES:
                b.power.active(pos.cycles, pos.insns, pos.mem)
                woke = b._park(b.uart.rx_available)
                if woke:
                    self._end_poll()
                return 2 if woke else 0
            return 0
        if reg == UART_BASE:
            self._end_poll()
            return b.uart.rx_pop()
        if reg == UART_BASE + 0x8:
            return self.uart_ctrl
        if reg == GPIO_BASE:
            return self.led
        return self.sim_id(reg)

    def periph_write(self, uc: Uc, offset: int, size: int, value: int, _ud: object) -> None:
        b = self.board
        address = PERIPH_BASE + offset
        reg = address & ~3
        if reg == UART_BASE:
            self._end_poll()
            if self.uart_ctrl & 1:
                b.uart.transmit(value & 0xFF)
        elif reg == UART_BASE + 0x8:
            self.uart_ctrl = value & 0xFF
        elif reg == GPIO_BASE:
            new = value & 0xFFFFFFFF
            if (new ^ self.led) & 1:
                pos = self._pos(uc, address)
                b.power.active(pos.cycles, pos.insns, pos.mem)  # segment boundary at the edge
                b.bus.add_edge(pos.cycles / b.clock_hz, new & 1, pos.cycles)
            self.led = new

    # -- 0xE000_0000 - 0xE00F_FFFF ---------------------------------------------------------
    def ppb_read(self, uc: Uc, offset: int, size: int, _ud: object) -> int:
        address = PPB_BASE + offset
        reg = address & ~3
        if SYST_BASE <= reg < SYST_BASE + 0x10:
            return self.systick.read(reg - SYST_BASE, self._pos(uc, address).cycles)
        if DWT_BASE <= reg < DWT_BASE + 0x8 and self.board.config.has_dwt:
            return self.dwt.read(reg - DWT_BASE, self._pos(uc, address).cycles)
        return self.scb.read(reg)

    def ppb_write(self, uc: Uc, offset: int, size: int, value: int, _ud: object) -> None:
        address = PPB_BASE + offset
        reg = address & ~3
        if SYST_BASE <= reg < SYST_BASE + 0x10:
            self.systick.write(reg - SYST_BASE, value, self._pos(uc, address).cycles)
        elif DWT_BASE <= reg < DWT_BASE + 0x8 and self.board.config.has_dwt:
            self.dwt.write(reg - DWT_BASE, value, self._pos(uc, address).cycles)
        elif self.scb.write(reg, value):
            self.board.request_reset()

    # -- debugger view (no side effects) -----------------------------------------------------
    def peek32(self, address: int) -> int:
        b = self.board
        if PERIPH_BASE <= address < PERIPH_BASE + PERIPH_SIZE:
            return {
                UART_BASE + 4: 2 if b.uart.rx_available() else 0,
                UART_BASE + 8: self.uart_ctrl,
                GPIO_BASE: self.led,
            }.get(address, self.sim_id(address))
        if SYST_BASE <= address < SYST_BASE + 0x10:
            return self.systick.value(b.cycles) if address == SYST_BASE + 8 else 0
        if DWT_BASE <= address < DWT_BASE + 8 and b.config.has_dwt:
            return self.dwt.cyccnt(b.cycles) if address == DWT_BASE + 4 else self.dwt.ctrl
        if PPB_BASE <= address < PPB_BASE + PPB_SIZE:
            return self.scb.read(address)
        raise KeyError(address)
