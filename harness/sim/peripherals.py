"""Register models of the simulated board's timers and system block (docs/sim-board.md).

Counters are pure functions of the board's cycle count (no per-cycle work): SysTick and DWT
CYCCNT store the cycle at which they were (re)started and compute their value on read.
"""

from __future__ import annotations

from dataclasses import dataclass

CPUID = {
    "cortex-m0plus": 0x410CC601,
    "cortex-m4": 0x410FC241,
    "cortex-m4f": 0x410FC241,
    "cortex-m7": 0x411FC272,
}

SYST_BASE = 0xE000E010
DWT_BASE = 0xE0001000
SCB_BASE = 0xE000ED00
CPACR = 0xE000ED88
DEMCR = 0xE000EDFC
AIRCR_KEY = 0x05FA


class SysTick:
    """24-bit down-counter clocked by the core clock; COUNTFLAG derived from zero crossings."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.enable = self.tickint = False
        self.clksource = True
        self.rvr = 0
        self._v0 = 0  # value when (re)started or frozen value when disabled
        self._start = 0
        self._flag_from = 0  # cycle after which a zero crossing sets COUNTFLAG
        self._flag = False

    def _zeros(self, elapsed: int) -> int:
        period = self.rvr + 1
        first = self._v0 if self._v0 > 0 else period
        if self.rvr == 0 or elapsed < first:
            return 0
        return (elapsed - first) // period + 1

    def value(self, now: int) -> int:
        if not self.enable or self.rvr == 0:
            return self._v0
        e = now - self._start
        if e <= self._v0:
            return self._v0 - e
        r = (e - self._v0) % (self.rvr + 1)
        return 0 if r == 0 else self.rvr + 1 - r

    def countflag(self, now: int) -> bool:
        if not self.enable:
            return self._flag
        return self._flag or self._zeros(now - self._start) > self._zeros(self._flag_from - self._start)

    def cycles_to_next_zero(self, now: int) -> int | None:
        """Cycles until the counter next reaches zero (None if it is stopped)."""
        if not self.enable or self.rvr == 0:
            return None
        e = now - self._start
        period = self.rvr + 1
        first = self._v0 if self._v0 > 0 else period
        nxt = first if e < first else first + ((e - first) // period + 1) * period
        return nxt - e

    def read(self, offset: int, now: int) -> int:
        if offset == 0x0:
            flag = self.countflag(now)
            self._flag, self._flag_from = False, now
            return int(self.enable) | int(self.tickint) << 1 | int(self.clksource) << 2 | int(flag) << 16
        if offset == 0x4:
            return self.rvr
        if offset == 0x8:
            return self.value(now)
        if offset == 0xC:
            return 0x40000000  # CALIB: NOREF, no TENMS value
        return 0

    def write(self, offset: int, value: int, now: int) -> None:
        if offset == 0x0:
            enable = bool(value & 1)
            if enable and not self.enable:
                self._start, self._flag_from = now, now
            elif self.enable and not enable:
                self._flag = self.countflag(now)
                self._v0 = self.value(now)
            self.enable, self.tickint, self.clksource = enable, bool(value & 2), bool(value & 4)
        elif offset == 0x4:
            self.rvr = value & 0xFFFFFF
        elif offset == 0x8:  # any write clears the counter and COUNTFLAG
            self._v0, self._start, self._flag, self._flag_from = 0, now, False, now


class Dwt:
    """DWT CTRL/CYCCNT; CYCCNT counts core cycles while CTRL.CYCCNTENA is set."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.ctrl = 0x40000000  # NUMCOMP field irrelevant here
        self._base = 0
        self._start = 0

    @property
    def enabled(self) -> bool:
        return bool(self.ctrl & 1)

    def cyccnt(self, now: int) -> int:
        return (self._base + (now - self._start if self.enabled else 0)) & 0xFFFFFFFF

    def read(self, offset: int, now: int) -> int:
        if offset == 0x0:
            return self.ctrl
        if offset == 0x4:
            return self.cyccnt(now)
        return 0

    def write(self, offset: int, value: int, now: int) -> None:
        if offset == 0x0:
            if bool(value & 1) != self.enabled:
                self._base, self._start = self.cyccnt(now), now
            self.ctrl = (self.ctrl & ~1) | (value & 1)
        elif offset == 0x4:
            self._base, self._start = value & 0xFFFFFFFF, now


# Fault status (ARMv7-M B3.2.15-B3.2.18): what a halted debugger reads after a fault.
SHCSR, CFSR, HFSR, DFSR, MMFAR, BFAR = (SCB_BASE + o for o in (0x24, 0x28, 0x2C, 0x30, 0x34, 0x38))
CFSR_IACCVIOL, CFSR_MMARVALID = 1 << 0, 1 << 7
CFSR_IBUSERR, CFSR_PRECISERR, CFSR_BFARVALID = 1 << 8, 1 << 9, 1 << 15
CFSR_UNDEFINSTR, CFSR_INVSTATE = 1 << 16, 1 << 17
HFSR_FORCED, HFSR_DEBUGEVT = 1 << 30, 1 << 31
SHCSR_MEMFAULTENA, SHCSR_BUSFAULTENA, SHCSR_USGFAULTENA = 1 << 16, 1 << 17, 1 << 18
DFSR_HALTED, DFSR_BKPT, DFSR_DWTTRAP, DFSR_VCATCH, DFSR_EXTERNAL = 1, 2, 4, 8, 16
DEMCR_VC_CORERESET, DEMCR_VC_HARDERR = 1 << 0, 1 << 10


@dataclass
class Scb:
    """CPUID, VTOR, AIRCR (SYSRESETREQ), CPACR, DEMCR and the fault/debug status registers.

    ``v7m`` selects whether the configurable fault registers exist (ARMv6-M has only a HardFault
    and DFSR). DFSR and DEMCR are debug-domain registers: a system reset keeps them."""

    cpuid: int
    v7m: bool = True
    vtor: int = 0
    cpacr: int = 0
    demcr: int = 0
    shcsr: int = 0
    cfsr: int = 0
    hfsr: int = 0
    dfsr: int = 0
    mmfar: int = 0
    bfar: int = 0

    def reset(self, vtor: int) -> None:
        self.vtor, self.cpacr, self.demcr = vtor, 0, self.demcr & ~0x01000000
        self.shcsr = self.cfsr = self.hfsr = self.mmfar = self.bfar = 0

    def latch_fault(self, kind: str, address: int | None) -> None:
        """Record a fault as the core's fault status registers would (kind: 'undef', 'invstate',
        'ifetch-bus', 'ifetch-xn', 'data-bus'). Without the fault's handler enabled in SHCSR it
        escalates to HardFault (HFSR.FORCED), as after reset on silicon."""
        if self.v7m:
            bit, enable = {
                "undef": (CFSR_UNDEFINSTR, SHCSR_USGFAULTENA),
                "invstate": (CFSR_INVSTATE, SHCSR_USGFAULTENA),
                "ifetch-bus": (CFSR_IBUSERR, SHCSR_BUSFAULTENA),
                "ifetch-xn": (CFSR_IACCVIOL, SHCSR_MEMFAULTENA),
                "data-bus": (CFSR_PRECISERR, SHCSR_BUSFAULTENA),
            }[kind]
            self.cfsr |= bit
            if kind == "data-bus" and address is not None:
                self.cfsr |= CFSR_BFARVALID
                self.bfar = address & 0xFFFFFFFF
            if not self.shcsr & enable:
                self.hfsr |= HFSR_FORCED
        if self.demcr & DEMCR_VC_HARDERR:
            self.dfsr |= DFSR_VCATCH

    def read(self, address: int) -> int:
        regs = {
            SCB_BASE: self.cpuid,
            SCB_BASE + 0x08: self.vtor,
            SCB_BASE + 0x0C: 0xFA050000,
            CPACR: self.cpacr,
            DEMCR: self.demcr,
            DFSR: self.dfsr,
        }
        if self.v7m:
            regs.update({SHCSR: self.shcsr, CFSR: self.cfsr, HFSR: self.hfsr, MMFAR: self.mmfar, BFAR: self.bfar})
        return regs.get(address, 0)

    def write(self, address: int, value: int) -> bool:
        """Returns True when the write requests a system reset."""
        if address == SCB_BASE + 0x08:
            self.vtor = value & 0xFFFFFF80
        elif address == SCB_BASE + 0x0C:
            return (value >> 16) == AIRCR_KEY and bool(value & 0x4)
        elif address == CPACR:
            self.cpacr = value
        elif address == DEMCR:
            self.demcr = value
        elif address == DFSR:
            self.dfsr &= ~value  # write-one-to-clear
        elif self.v7m and address == SHCSR:
            self.shcsr = value & 0x00070000
        elif self.v7m and address == CFSR:
            self.cfsr &= ~value
        elif self.v7m and address == HFSR:
            self.hfsr &= ~value
        elif self.v7m and address in (MMFAR, BFAR):
            setattr(self, "mmfar" if address == MMFAR else "bfar", value & 0xFFFFFFFF)
        return False
