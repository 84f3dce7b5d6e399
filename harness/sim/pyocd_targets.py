"""pyOCD target types of the simulated boards (``flash.pyocd_target`` of each sim-* board file),
registered into pyOCD's TARGET table when the probe plugin loads.

The simulated flash controller accepts MEM-AP writes, so the flash class erases/programs by plain
memory writes instead of running a flash algorithm on the core. After connecting, the target reads
the board-identity block (SIM_ID at 0x4002_F000) and refuses a board it does not describe, like a
real target checking its part ID: a wrong ``-t`` fails instead of silently programming.
"""

from __future__ import annotations

from pyocd.core.exceptions import TargetSupportError
from pyocd.core.memory_map import FlashRegion, MemoryMap, RamRegion
from pyocd.coresight.coresight_target import CoreSightTarget
from pyocd.flash.flash import Flash

from harness.config.board import BoardConfig, load_board
from harness.sim.mmio import SIM_ID_BASE, SIM_ID_SIZE

SECTOR = 0x1000
PAGE = 0x400


class SimFlash(Flash):
    """Flash of a simulated board: erase = write 0xFF, program = write (through the MEM-AP)."""

    def __init__(self, target):
        super().__init__(target, None)
        self.is_valid = True

    @property
    def is_erase_all_supported(self) -> bool:
        return True

    def init(self, operation, address=None, clock=0, reset=False):
        self._active_operation = operation

    def uninit(self):
        self._active_operation = None

    def erase_all(self):
        region = self.region
        for addr in range(region.start, region.end + 1, SECTOR):
            self.erase_sector(addr)

    def erase_sector(self, address):
        self.target.write_memory_block8(address, [0xFF] * SECTOR)

    def program_page(self, address, bytes):
        self.target.write_memory_block8(address, list(bytes))

    def program_phrase(self, address, bytes):
        self.target.write_memory_block8(address, list(bytes))


def read_board_id(target) -> str:
    raw = bytes(target.read_memory_block8(SIM_ID_BASE, SIM_ID_SIZE))
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def make_target_class(board: BoardConfig) -> type[CoreSightTarget]:
    mem = board.memory

    def memory_map() -> MemoryMap:
        return MemoryMap(
            FlashRegion(
                start=mem.flash_base,
                length=mem.flash_size,
                blocksize=SECTOR,
                page_size=PAGE,
                is_boot_memory=True,
                flash_class=SimFlash,
                erased_byte_value=0xFF,
            ),
            RamRegion(start=mem.ram_base, length=mem.ram_size),
        )

    def __init__(self, session):
        CoreSightTarget.__init__(self, session, memory_map())

    def post_connect_hook(self):
        found = read_board_id(self)
        if found != board.name:
            raise TargetSupportError(
                f"target type '{board.flash.pyocd_target}' is for simulated board '{board.name}', "
                f"but the probe is connected to '{found or 'an unknown board'}'"
            )

    return type(
        f"SimTarget_{board.flash.pyocd_target}",
        (CoreSightTarget,),
        {
            "VENDOR": "Harness (simulated)",
            "PART_NUMBER": board.name,
            "PART_FAMILIES": ["Simulated"],
            "__init__": __init__,
            "post_connect_hook": post_connect_hook,
            "MEMORY_MAP": memory_map(),
        },
    )


def register_targets(board_names: list[str]) -> list[str]:
    """Add a pyOCD target type per sim board; returns the target names."""
    from pyocd.target import TARGET

    names = []
    for name in board_names:
        cfg = load_board(name)
        tname = cfg.flash.pyocd_target.lower()
        if tname not in TARGET:
            TARGET[tname] = make_target_class(cfg)
        names.append(tname)
    return names
