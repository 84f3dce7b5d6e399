"""ADIv5 debug port of a simulated board: SW-DP + one AHB-AP (MEM-AP), the ROM table and the
Cortex-M debug registers (DHCSR, DCRSR, DCRDR, DEMCR, AIRCR, DFSR) over the board's memory.

Why register level: pyOCD then discovers and drives the simulated board with its ordinary
CoreSight code (discovery, CortexM halt/reset/register access, MEM-AP block transfers), so the
same flashing path works through the plugin, the pyOCD CLI and ``pyocd server``.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence

from unicorn import arm_const as uca

from harness.sim.board import SimBoard
from harness.sim.peripherals import DEMCR_VC_CORERESET

# DP registers (probe-level addresses)
DP_IDR, DP_CTRL_STAT, DP_SELECT, DP_RDBUFF = 0x0, 0x4, 0x8, 0xC
# AP registers
AP_CSW, AP_TAR, AP_DRW, AP_BD0, AP_CFG, AP_BASE, AP_IDR = 0x00, 0x04, 0x0C, 0x10, 0xF4, 0xF8, 0xFC

ROM_BASE = 0xE00FF000
SCS_BASE, DWT_BASE, FPB_BASE = 0xE000E000, 0xE0001000, 0xE0002000
DHCSR, DCRSR, DCRDR, DEMCR = 0xE000EDF0, 0xE000EDF4, 0xE000EDF8, 0xE000EDFC
AIRCR, DFSR, CPACR = 0xE000ED0C, 0xE000ED30, 0xE000ED88
MVFR0, MVFR1, MVFR2 = 0xE000EF40, 0xE000EF44, 0xE000EF48
FP_CTRL, FP_COMP0 = 0xE0002000, 0xE0002008
SCB_DEBUG_LO, SCB_DEBUG_HI = 0xE000ED24, 0xE000ED40  # SHCSR..AFSR: fault and debug status

ARM_JEP106 = 0x43B

# REGSEL -> unicorn register (DCRSR)
_REGSEL = {i: getattr(uca, f"UC_ARM_REG_R{i}") for i in range(13)}
_REGSEL.update(
    {
        13: uca.UC_ARM_REG_SP,
        14: uca.UC_ARM_REG_LR,
        15: uca.UC_ARM_REG_PC,
        16: uca.UC_ARM_REG_XPSR,
        17: uca.UC_ARM_REG_MSP,
        18: uca.UC_ARM_REG_PSP,
        33: uca.UC_ARM_REG_FPSCR,
    }
)
_REGSEL.update({64 + i: getattr(uca, f"UC_ARM_REG_S{i}") for i in range(32)})


def _component_ids(part: int, klass: int) -> dict[int, int]:
    """PIDR0-4 / CIDR0-3 words at offsets 0xFD0-0xFFC of a CoreSight component."""
    pidr = {
        0xFE0: part & 0xFF,
        0xFE4: ((ARM_JEP106 & 0xF) << 4) | ((part >> 8) & 0xF),
        0xFE8: 0x08 | ((ARM_JEP106 >> 4) & 0x7),
        0xFEC: 0,
        0xFD0: (ARM_JEP106 >> 8) & 0xF,
    }
    cidr = {0xFF0: 0x0D, 0xFF4: (klass << 4) & 0xF0, 0xFF8: 0x05, 0xFFC: 0xB1}
    return {**pidr, **cidr}


class DebugBus:
    """The address space the MEM-AP sees: board memory plus debug components."""

    def __init__(self, board: SimBoard):
        self.board = board
        v6m = board.config.core == "cortex-m0plus"
        has_fpu = board.config.has_fpu
        self.dcrdr = 0
        self.reset_sticky = True
        self.regs: dict[int, int] = {}
        entries = [((SCS_BASE - ROM_BASE) & 0xFFFFF000) | 3]
        if board.config.has_dwt:
            entries.append(((DWT_BASE - ROM_BASE) & 0xFFFFF000) | 3)
        entries.append(((FPB_BASE - ROM_BASE) & 0xFFFFF000) | 3)
        entries.append(0)
        self.fixed: dict[int, int] = {ROM_BASE + 4 * i: e for i, e in enumerate(entries)}
        for off, val in _component_ids(0x4C0 if v6m else 0x4C4, 0x1).items():
            self.fixed[ROM_BASE + off] = val
        for base, part in ((SCS_BASE, 0x008 if v6m else 0x00C), (FPB_BASE, 0x00B if v6m else 0x003)):
            for off, val in _component_ids(part, 0xE).items():
                self.fixed[base + off] = val
        if board.config.has_dwt:
            for off, val in _component_ids(0x00A if v6m else 0x002, 0xE).items():
                self.fixed[DWT_BASE + off] = val
        self.fixed[MVFR0] = 0x10110021 if has_fpu else 0
        self.fixed[MVFR1] = 0x11000011 if has_fpu else 0
        self.fixed[MVFR2] = 0

    # -- DHCSR (run control lives in the board's DebugUnit) --------------------------------
    def _dhcsr(self) -> int:
        val = self.board.debug.dhcsr()
        if self.reset_sticky:
            val |= 1 << 25  # S_RESET_ST: reset since the last read
            self.reset_sticky = False
        return val

    def _core_transfer(self, dcrsr: int) -> None:
        regsel, write = dcrsr & 0x7F, bool(dcrsr & (1 << 16))
        b = self.board
        if regsel == 20:  # CONTROL[31:24] FAULTMASK[23:16] BASEPRI[15:8] PRIMASK[7:0]
            if write:
                b.write_core_register(uca.UC_ARM_REG_CONTROL, (self.dcrdr >> 24) & 0xFF)
                b.write_core_register(uca.UC_ARM_REG_PRIMASK, self.dcrdr & 1)
            else:
                self.dcrdr = (b.read_core_register(uca.UC_ARM_REG_CONTROL) & 0xFF) << 24 | (
                    b.read_core_register(uca.UC_ARM_REG_PRIMASK) & 1
                )
            return
        reg = _REGSEL.get(regsel)
        if reg is None:
            if not write:
                self.dcrdr = 0
            return
        if write:
            value = self.dcrdr & ~1 if regsel == 15 else self.dcrdr
            b.write_core_register(reg, value)
        else:
            self.dcrdr = b.read_core_register(reg) & 0xFFFFFFFF
            if regsel == 16:
                self.dcrdr |= 1 << 24  # Thumb state bit

    def reset(self, halt: bool) -> None:
        b = self.board
        if b.flash.dirty or not b._running_thread():
            # Saving also signals a process that runs this board (SimRig) to reset it, as a
            # debugger reset would on a real board.
            b.flash.save()
        b.reset(halt=halt)
        if halt:
            b.debug.vector_catch_reset()
        self.reset_sticky = True

    # -- word access ---------------------------------------------------------------------
    def read32(self, address: int) -> int:
        dbg = self.board.debug
        if address == DHCSR:
            return self._dhcsr()
        if address == DCRDR:
            return self.dcrdr
        if address == DCRSR:
            return 0
        if address in self.fixed:
            return self.fixed[address]
        if address == FP_CTRL:
            return dbg.fp_ctrl()
        if FP_COMP0 <= address < FP_COMP0 + 4 * len(dbg.fp_comp):
            return dbg.fp_comp[(address - FP_COMP0) // 4]
        if DWT_BASE + 0x20 <= address < DWT_BASE + 0x1000:
            return dbg.read_dwt(address - DWT_BASE)
        if FPB_BASE <= address < FPB_BASE + 0x1000 or 0xE0040000 <= address < 0xE00FF000:
            return self.regs.get(address, 0)
        return int.from_bytes(self.board.debug_read(address, 4), "little")

    def write32(self, address: int, value: int) -> None:
        value &= 0xFFFFFFFF
        dbg = self.board.debug
        if address == DHCSR:
            dbg.write_dhcsr(value)
        elif address == DCRDR:
            self.dcrdr = value
        elif address == DCRSR:
            self._core_transfer(value)
        elif address == AIRCR and (value >> 16) == 0x05FA and value & 0x5:
            self.reset(halt=bool(self.board.scb.demcr & DEMCR_VC_CORERESET))
        elif address == FP_CTRL:
            dbg.write_fp_ctrl(value)
        elif FP_COMP0 <= address < FP_COMP0 + 4 * len(dbg.fp_comp):
            dbg.write_fp_comp((address - FP_COMP0) // 4, value)
        elif DWT_BASE + 0x20 <= address < DWT_BASE + 0x1000:
            dbg.write_dwt(address - DWT_BASE, value)
        elif address in self.fixed or FPB_BASE <= address < FPB_BASE + 0x1000:
            self.regs[address] = value
        elif SCB_DEBUG_LO <= address < SCB_DEBUG_HI or address in (DEMCR, CPACR):
            self.board.scb.write(address, value)
        else:
            self.board.debug_write(address, value.to_bytes(4, "little"))

    def read(self, address: int, size: int) -> int:
        """Read of 8/16/32 bits, returned in its byte lane like a MEM-AP DRW."""
        if size == 32:
            return self.read32(address)
        if self.board._region(address, size // 8) is not None:
            data = self.board.debug_read(address, size // 8)
            return int.from_bytes(data, "little") << (8 * (address & 3))
        word = self.read32(address & ~3)
        mask = (1 << size) - 1
        return word & (mask << (8 * (address & 3)))

    def write(self, address: int, size: int, lane_value: int) -> None:
        if size == 32:
            self.write32(address, lane_value)
            return
        value = (lane_value >> (8 * (address & 3))) & ((1 << size) - 1)
        if self.board._region(address, size // 8) is not None:
            self.board.debug_write(address, value.to_bytes(size // 8, "little"))
            return
        word = self.read32(address & ~3)
        shift = 8 * (address & 3)
        mask = ((1 << size) - 1) << shift
        self.write32(address & ~3, (word & ~mask) | (value << shift))


class SimDap:
    """SW-DP registers and a single AHB-AP (APSEL 0) in front of a DebugBus."""

    def __init__(self, board: SimBoard):
        v6m = board.config.core == "cortex-m0plus"
        self.dpidr = 0x0BC11477 if v6m else 0x2BA01477
        self.ap_idr = 0x04770031 if v6m else 0x24770011
        self.bus = DebugBus(board)
        self.ctrl_stat = 0
        self.select = 0
        self.csw = 0x03000052  # 32-bit, single auto-increment, DeviceEn
        self.tar = 0
        self.lock = threading.RLock()

    # DP
    def read_dp(self, addr: int) -> int:
        if addr == DP_IDR:
            return self.dpidr
        if addr == DP_CTRL_STAT:
            acks = (self.ctrl_stat & 0x50000000) << 1  # CxxxPWRUPREQ -> CxxxPWRUPACK
            return self.ctrl_stat | acks
        if addr == DP_SELECT:
            return self.select
        return 0  # RDBUFF

    def write_dp(self, addr: int, value: int) -> None:
        if addr == DP_CTRL_STAT:
            self.ctrl_stat = value & 0x5F000F00
        elif addr == DP_SELECT:
            self.select = value

    # AP
    def _size(self) -> int:
        return {0: 8, 1: 16, 2: 32}.get(self.csw & 7, 32)

    def _advance(self) -> None:
        if (self.csw >> 4) & 3 == 1:
            step = self._size() // 8
            self.tar = (self.tar & ~0xFFF) | ((self.tar + step) & 0xFFF)  # 4 KiB wrap (>= what pyOCD assumes)

    def _plain_run(self, addr: int, count: int) -> bool:
        """A DRW burst of 32-bit auto-incremented words inside one 4 KiB TAR page of plain
        memory: it can move as one block (a flash image is thousands of such words)."""
        return ((addr >> 24) & 0xFF == 0 and addr & 0xFC == AP_DRW and self._size() == 32
                and (self.csw >> 4) & 3 == 1 and (self.tar & 0xFFF) + 4 * count <= 0x1000
                and self.bus.board._region(self.tar, 4 * count) is not None)  # fmt: skip

    def _advance_by(self, nbytes: int) -> None:
        self.tar = (self.tar & ~0xFFF) | ((self.tar + nbytes) & 0xFFF)  # as _advance, word by word

    def read_ap_block(self, addr: int, count: int) -> list[int]:
        with self.lock:
            if count > 1 and self._plain_run(addr, count):
                data = self.bus.board.debug_read(self.tar, 4 * count)
                self._advance_by(4 * count)
                return list(struct.unpack(f"<{count}I", data))
            return [self.read_ap(addr) for _ in range(count)]

    def write_ap_block(self, addr: int, values: Sequence[int]) -> None:
        with self.lock:
            if len(values) > 1 and self._plain_run(addr, len(values)):
                self.bus.board.debug_write(
                    self.tar, struct.pack(f"<{len(values)}I", *(v & 0xFFFFFFFF for v in values))
                )
                self._advance_by(4 * len(values))
                return
            for v in values:
                self.write_ap(addr, v)

    def read_ap(self, addr: int) -> int:
        apsel, reg = (addr >> 24) & 0xFF, addr & 0xFC
        if apsel != 0:
            return 0
        with self.lock:
            if reg == AP_CSW:
                return self.csw | 0x40
            if reg == AP_TAR:
                return self.tar
            if reg == AP_DRW:
                val = self.bus.read(self.tar, self._size())
                self._advance()
                return val
            if AP_BD0 <= reg < AP_BD0 + 0x10:
                return self.bus.read32((self.tar & ~0xF) + (reg - AP_BD0))
            if reg == AP_CFG:
                return 0
            if reg == AP_BASE:
                return ROM_BASE | 3
            if reg == AP_IDR:
                return self.ap_idr
            return 0

    def write_ap(self, addr: int, value: int) -> None:
        apsel, reg = (addr >> 24) & 0xFF, addr & 0xFC
        if apsel != 0:
            return
        with self.lock:
            if reg == AP_CSW:
                self.csw = value & 0xFFFFFFBF
            elif reg == AP_TAR:
                self.tar = value & 0xFFFFFFFF
            elif reg == AP_DRW:
                self.bus.write(self.tar, self._size(), value)
                self._advance()
            elif AP_BD0 <= reg < AP_BD0 + 0x10:
                self.bus.write32((self.tar & ~0xF) + (reg - AP_BD0), value)
