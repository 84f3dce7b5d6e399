"""The bare-metal linker script, generated from the board's memory map."""

from __future__ import annotations

from string import Template

from harness.build.templates import template_dir
from harness.config.board import BoardConfig

_UNBOUNDED = 0x1000_0000  # region size used to measure an image that does not fit


def render_linker_script(board: BoardConfig, *, unbounded: bool = False) -> str:
    """Flash starts at flash_base + app_offset (the vector table goes there); RAM is the board's
    whole RAM with ``stack_size`` reserved after .bss. ``unbounded`` lifts the region sizes so an
    oversized image still links and can be measured."""
    mem = board.memory
    origin = mem.flash_base + mem.app_offset
    flash_len = mem.flash_size - mem.app_offset
    ram_len = mem.ram_size
    if unbounded:
        gap = mem.ram_base - origin
        flash_len = gap if 0 < gap < _UNBOUNDED else _UNBOUNDED
        ram_len = _UNBOUNDED
    text = (template_dir("bare-metal") / "board.ld.in").read_text()
    return Template(text).substitute(
        board=board.name,
        flash_origin=f"0x{origin:08X}",
        flash_length=f"0x{flash_len:X}",
        ram_origin=f"0x{mem.ram_base:08X}",
        ram_length=f"0x{ram_len:X}",
        stack_size=f"0x{mem.stack_size:X}",
    )
