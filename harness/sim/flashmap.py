"""How the emulated flash is mapped into Unicorn: code pages as plain memory, data pages (weights,
other read-only data) through a read callback that charges the memory-system model.

Why not a memory hook on the whole flash: with any UC_HOOK_MEM_READ listed, Unicorn 2.1 restores
the CPU state of every hooked read (qemu/accel/tcg/cputlb.c, ``cpu_restore_state``), which leaves
a stale Thumb IT state behind inside ``ite`` blocks (unicorn-engine/unicorn#2309: the CSR float
LeNet computed garbage), and it puts every load of the program, SRAM included, on the slow path.
An mmio region's reads go through ``io_readx``, which restores nothing, and loads elsewhere keep
the fast path. Unicorn cannot execute from an mmio region (no UC_PROT_EXEC), so a page is served
as data until the core first fetches from it: the fetch fails (UC_ERR_FETCH_PROT), the board
calls :meth:`FlashMap.claim_code` and restarts at the same PC. Pages found to hold code are
remembered until the image changes, so the next reset maps them as plain memory straight away.
While nothing is charged (an untimed scope) the data pages are plain read-only memory instead
(``plain_data``): loads from them take Unicorn's fast path, and a fetch still fails as above.
The bare-metal linker script (firmware_templates/bare-metal/board.ld.in) starts ``.rodata`` on a
page of its own, so weights never share a page with code; reads of a code page (literal pools,
branch tables) are charged from the decoded block instead (harness/sim/decode.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from unicorn import UC_PROT_EXEC, UC_PROT_READ, UC_QUERY_PAGE_SIZE, Uc

# Unicorn's target page for ARM M-profile (TARGET_PAGE_BITS_MIN = 10, qemu/target/arm/cpu-param.h);
# checked against the engine in map().
PAGE_SIZE = 1024


@dataclass(frozen=True)
class Run:
    first: int  # page index from the flash base
    end: int
    code: bool


MapData = Callable[[Uc, int, int, int], None]  # (uc, guest address, flash offset, size)


class FlashMap:
    """The flash layout of the current engine and the pages known to hold code."""

    def __init__(self, base: int, data: bytearray, host_address: int, split: bool, map_data: MapData):
        """``split`` False (flash data reads cost nothing on this board): all flash is plain
        memory. ``map_data`` maps data pages as an mmio region (the counter's read callback)."""
        self.base, self.size = base, len(data)
        self.pages = -(-self.size // PAGE_SIZE)
        self._host = host_address
        self.split = split
        self._map_data = map_data
        self.code_pages: set[int] = set()
        self.runs: list[Run] = []
        self.plain_data = False  # data pages as read-only memory (reads not charged) instead of mmio

    def forget(self) -> None:
        """The image changed: rediscover its code pages from the next reset on."""
        self.code_pages.clear()

    def map(self, uc: Uc, plain_data: bool = False) -> None:
        """Map the whole flash into a fresh engine."""
        self.plain_data = plain_data
        if self.split and uc.query(UC_QUERY_PAGE_SIZE) != PAGE_SIZE:
            raise RuntimeError(f"Unicorn's page size is {uc.query(UC_QUERY_PAGE_SIZE)}, not {PAGE_SIZE}")
        if not self.split:
            self.runs = [Run(0, self.pages, True)]
        else:
            self.runs = []
            for p in range(self.pages):
                code = p in self.code_pages
                if self.runs and self.runs[-1].code == code:
                    self.runs[-1] = Run(self.runs[-1].first, p + 1, code)
                else:
                    self.runs.append(Run(p, p + 1, code))
        for run in self.runs:
            self._map_run(uc, run)

    def _map_run(self, uc: Uc, run: Run) -> None:
        offset = run.first * PAGE_SIZE
        size = min(run.end * PAGE_SIZE, self.size) - offset
        if run.code:
            uc.mem_map_ptr(self.base + offset, size, UC_PROT_READ | UC_PROT_EXEC, self._host + offset)
        elif self.plain_data:
            uc.mem_map_ptr(self.base + offset, size, UC_PROT_READ, self._host + offset)
        else:
            self._map_data(uc, self.base + offset, offset, size)

    def set_plain_data(self, uc: Uc, on: bool) -> None:
        """Serve the data pages as plain memory (``on``: their reads are not charged) or through
        the read callback again; call between emulation slices."""
        if not self.split or on == self.plain_data:
            return
        data_runs = [r for r in self.runs if not r.code]
        for run in data_runs:
            offset = run.first * PAGE_SIZE
            uc.mem_unmap(self.base + offset, min(run.end * PAGE_SIZE, self.size) - offset)
        self.plain_data = on
        for run in data_runs:
            self._map_run(uc, run)

    def _run_at(self, page: int) -> int:
        for i, run in enumerate(self.runs):
            if run.first <= page < run.end:
                return i
        raise ValueError(page)

    def is_code(self, address: int) -> bool:
        """True when ``address`` is outside flash or on a page served as plain memory."""
        if not self.split or not self.base <= address < self.base + self.size:
            return True
        return self.runs[self._run_at((address - self.base) // PAGE_SIZE)].code

    def claim_code(self, uc: Uc, address: int) -> bool:
        """A fetch from ``address`` failed: if it is on a data page, serve that page as code from
        now on and return True (the caller restarts the core at its PC)."""
        if not self.split or not self.base <= address < self.base + self.size:
            return False
        page = (address - self.base) // PAGE_SIZE
        i = self._run_at(page)
        run = self.runs[i]
        if run.code:
            return False
        offset = run.first * PAGE_SIZE
        uc.mem_unmap(self.base + offset, min(run.end * PAGE_SIZE, self.size) - offset)
        pieces = [Run(run.first, page, False), Run(page, page + 1, True), Run(page + 1, run.end, False)]
        pieces = [r for r in pieces if r.end > r.first]
        for r in pieces:
            self._map_run(uc, r)
        self.runs[i : i + 1] = pieces
        self.code_pages.add(page)
        return True
