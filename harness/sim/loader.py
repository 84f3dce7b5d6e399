"""The emulator loads images with the flash stage's reader (harness.flash.image)."""

from harness.flash.image import Segment, elf_symbols, image_format, load_segments

__all__ = ["Segment", "elf_symbols", "image_format", "load_segments"]
