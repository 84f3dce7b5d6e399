"""Read a firmware image (ELF, Intel HEX or raw binary) into (address, bytes) segments."""

from __future__ import annotations

from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from intelhex import IntelHex

Segment = tuple[int, bytes]


def image_format(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head == b"\x7fELF":
        return "elf"
    if path.suffix.lower() in (".hex", ".ihex") or head[:1] == b":":
        return "hex"
    return "bin"


def load_segments(path: str | Path, bin_base: int) -> list[Segment]:
    """Loadable segments of ``path``; a raw binary is placed at ``bin_base``."""
    path = Path(path)
    fmt = image_format(path)
    if fmt == "elf":
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            return [
                (seg["p_paddr"], seg.data()[: seg["p_filesz"]])
                for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0
            ]
    if fmt == "hex":
        ih = IntelHex(str(path))
        return [(lo, ih.tobinstr(start=lo, end=hi - 1)) for lo, hi in ih.segments()]
    return [(bin_base, path.read_bytes())]


def elf_symbols(path: str | Path) -> dict[str, int]:
    """Function/object symbols of an ELF (for debugging output)."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            return {}
        return {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}
