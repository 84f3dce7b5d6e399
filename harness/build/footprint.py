"""Flash and RAM footprint of a linked image, by section, with the model's weights, code and
arena attributed from the symbols its own object files define."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Symbol, SymbolTableSection

from harness.build.records import Berkeley, FlashUse, Footprint, RamUse
from harness.config.board import BoardConfig

_KINDS = ("STT_OBJECT", "STT_FUNC")
HEAP_SECTION = ".heap"


def _symbols_with_file(elf: ELFFile) -> Iterator[tuple[str, Symbol]]:
    """Sized data/function symbols with the source file that defines them (locals follow their
    STT_FILE entry; globals carry no file, reported as "")."""
    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        return
    current = ""
    for sym in symtab.iter_symbols():
        kind = sym["st_info"]["type"]
        if kind == "STT_FILE":
            current = Path(sym.name).name
        elif kind in _KINDS and sym["st_size"] > 0 and isinstance(sym["st_shndx"], int):
            yield (current if sym["st_info"]["bind"] == "STB_LOCAL" else ""), sym


def _defined_in(objects: Iterable[Path]) -> set[tuple[str, str]]:
    """(file, name) of the symbols the object files define; file is "" for globals."""
    found: set[tuple[str, str]] = set()
    for obj in objects:
        with open(obj, "rb") as fh:
            elf = ELFFile(fh)
            for file, sym in _symbols_with_file(elf):
                if sym["st_shndx"] != 0:
                    found.add((file, sym.name))
    return found


def _add(d: dict[str, int], name: str, size: int) -> None:
    d[name] = d.get(name, 0) + size


def measure_footprint(
    elf_path: Path,
    board: BoardConfig,
    model_objects: Iterable[Path] = (),
    weights_objects: Iterable[Path] | None = None,
) -> Footprint:
    """The image's Footprint (written as footprint.json).

    Flash = non-writable allocated sections + the load image of initialised data; RAM = every
    allocated section placed in the board's RAM (.data, .bss with the arena, the stack, and code
    copied to RAM such as the RP2040's) except a ``.heap`` section, which Mbed's linker scripts
    stretch over whatever RAM is left (reported as ``ram.heap``, not as use). The Berkeley
    ``text/data/bss`` triple equals what ``arm-none-eabi-size`` prints. Constant data defined by ``weights_objects``
    (default: all model objects) counts as weights, other model constants as ``model_const``;
    the largest zero-initialised model object is the arena.
    """
    model_objects = list(model_objects)
    model_syms = _defined_in(model_objects)
    weight_syms = model_syms if weights_objects is None else _defined_in(weights_objects)
    with open(elf_path, "rb") as fh:
        elf = ELFFile(fh)
        sections: dict[str, int] = {}
        kinds: dict[int, str] = {}
        ram_code = 0  # read-only sections whose run address is RAM (code copied there at boot)
        mem = board.memory
        for idx, sec in enumerate(elf.iter_sections()):
            if not sec["sh_flags"] & SH_FLAGS.SHF_ALLOC or sec["sh_size"] == 0:
                continue
            sections[sec.name] = sec["sh_size"]
            if sec["sh_type"] == "SHT_NOBITS":
                kinds[idx] = "bss"
            elif sec["sh_flags"] & SH_FLAGS.SHF_WRITE:
                kinds[idx] = "data"
            else:
                kinds[idx] = "text"
                if mem.ram_base <= sec["sh_addr"] < mem.ram_base + mem.ram_size:
                    ram_code += sec["sh_size"]
        by_kind = {k: sum(sections[s.name] for i, s in enumerate(elf.iter_sections()) if kinds.get(i) == k)
                   for k in ("text", "data", "bss")}  # fmt: skip
        weights: dict[str, int] = {}
        model_const: dict[str, int] = {}
        model_bss: dict[str, int] = {}
        model_code = 0
        for file, sym in _symbols_with_file(elf):
            key = (file, sym.name)
            if key not in model_syms:
                continue
            kind, size = kinds.get(sym["st_shndx"]), sym["st_size"]
            if sym["st_info"]["type"] == "STT_FUNC" and kind == "text":
                model_code += size
            elif kind == "text":
                _add(weights if key in weight_syms else model_const, sym.name, size)
            elif kind == "bss":
                _add(model_bss, sym.name, size)

    text, data, bss = by_kind["text"], by_kind["data"], by_kind["bss"]
    vectors = sections.get(".isr_vector", 0)
    weights_total, const_total = sum(weights.values()), sum(model_const.values())
    # constants in .rodata* (bare-metal script) or merged into .text (Mbed's scripts)
    rodata = max(sum(v for k, v in sections.items() if k.startswith(".rodata")), weights_total)
    stack = sections.get(".stack", 0)
    heap = sections.get(HEAP_SECTION, 0)
    arena_symbol = max(model_bss, key=lambda k: model_bss[k]) if model_bss else None
    arena = model_bss[arena_symbol] if arena_symbol else 0
    flash_avail = mem.flash_size - mem.app_offset
    flash_total, ram_total = text + data, data + bss - heap + ram_code
    return Footprint(
        board=board.name,
        flash=FlashUse(
            vectors=vectors,
            code=text - vectors - rodata,
            weights=weights_total,
            rodata_other=rodata - weights_total,
            data_init=data,
            total=flash_total,
            available=flash_avail,
            used_pct=round(100.0 * flash_total / flash_avail, 2),
            # informational subsets of code / rodata_other:
            model_code=model_code,
            model_const=const_total,
        ),
        ram=RamUse(
            data=data,
            bss=bss - arena - stack - heap,
            arena=arena,
            stack=stack,
            code=ram_code,  # code copied to RAM at boot (RP2040 PICO_COPY_TO_RAM), also counted in flash
            heap=heap,
            total=ram_total,
            available=mem.ram_size,
            used_pct=round(100.0 * ram_total / mem.ram_size, 2),
        ),
        berkeley=Berkeley(text=text, data=data, bss=bss),
        sections=sections,
        weights_symbols=dict(sorted(weights.items())),
        model_bss_symbols=dict(sorted(model_bss.items())),
        arena_symbol=arena_symbol,
        fits=flash_total <= flash_avail and ram_total <= mem.ram_size,
    )
