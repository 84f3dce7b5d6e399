"""Real arm-none-eabi-gcc builds of the bare-metal firmware with the fixture model."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_sources

from harness.build import FirmwareTooLarge, ModelSources, build_firmware
from harness.build.linker import render_linker_script
from harness.config import load_board
from harness.errors import StageError

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")

BOARDS = ["sim-m4", "sim-pico", "sim-nano33ble"]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    root = tmp_path_factory.mktemp("fw")
    return {b: build_firmware(fixture_sources(), load_board(b), root / b, cache_dir=cache_dir) for b in BOARDS}


def _berkeley(elf: Path) -> tuple[int, int, int]:
    out = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(x) for x in out.splitlines()[1].split()[:3])
    return text, data, bss


@pytest.mark.parametrize("board", BOARDS)
def test_build_outputs_and_footprint_agree_with_size(builds, board: str) -> None:
    r = builds[board]
    assert r.status == "built" and not r.cache_hit
    for p in (r.elf, r.bin, r.hex):
        assert p is not None and p.stat().st_size > 0
    text, data, bss = _berkeley(r.elf)
    fp = json.loads((r.out_dir / "footprint.json").read_text())
    assert fp == r.footprint.model_dump()  # the file holds exactly the record
    assert fp["berkeley"] == {"text": text, "data": data, "bss": bss}
    assert fp["flash"]["total"] == text + data
    assert fp["ram"]["total"] == data + bss
    fl, ram = fp["flash"], fp["ram"]
    assert fl["vectors"] + fl["code"] + fl["weights"] + fl["rodata_other"] + fl["data_init"] == fl["total"]
    assert ram["data"] + ram["bss"] + ram["arena"] + ram["stack"] == ram["total"]
    # The fixture's weight table and arena are attributed by symbol, not guessed.
    assert fp["weights_symbols"] == {"fixture_weights": INPUT_BYTES}
    assert fp["arena_symbol"] == "model_arena" and ram["arena"] == 1024
    # The fixture's one initialised global: 4 bytes of RAM plus their load image in flash.
    assert ram["data"] == fl["data_init"] == 4
    board_cfg = load_board(board)
    assert ram["stack"] == board_cfg.memory.stack_size
    assert fl["available"] == board_cfg.memory.flash_size - board_cfg.memory.app_offset
    assert fp["fits"] is True
    manifest = json.loads((r.out_dir / "build.json").read_text())
    assert manifest["firmware_sha256"] == r.firmware_sha256 and manifest["build_id"] == r.build_id


@pytest.mark.parametrize("board", BOARDS)
def test_vector_table_at_application_start(builds, board: str) -> None:
    cfg = load_board(board)
    start = cfg.memory.flash_base + cfg.memory.app_offset
    with open(builds[board].elf, "rb") as fh:
        elf = ELFFile(fh)
        vt = elf.get_section_by_name(".isr_vector")
        assert vt["sh_addr"] == start
        sp, reset = struct.unpack("<II", vt.data()[:8])
        symtab = elf.get_section_by_name(".symtab")
        reset_sym = symtab.get_symbol_by_name("Reset_Handler")[0]
        stack_end = symtab.get_symbol_by_name("__stack_end")[0]
    assert reset == reset_sym["st_value"] | 1  # Thumb bit set
    assert sp == stack_end["st_value"]
    assert cfg.memory.ram_base < sp <= cfg.memory.ram_base + cfg.memory.ram_size
    assert start <= reset < start + cfg.memory.flash_size - cfg.memory.app_offset
    # The .bin is what gets programmed at program_base: it starts with the vector table.
    assert builds[board].bin.read_bytes()[:8] == struct.pack("<II", sp, reset)


def test_core_specific_code(builds) -> None:
    """M0+ (ARMv6-M) has no DWT: the image uses SysTick; M4F images use hard-float DWT builds."""

    def attrs(elf: Path) -> str:
        return subprocess.run(["arm-none-eabi-readelf", "-A", str(elf)], capture_output=True, text=True).stdout

    def strings(elf: Path) -> bytes:
        return elf.read_bytes()

    pico, m4 = builds["sim-pico"], builds["sim-m4"]
    assert "v6S-M" in attrs(pico.elf) and "VFP" not in attrs(pico.elf)
    assert "v7E-M" in attrs(m4.elf) and "VFPv4-D16" in attrs(m4.elf)
    assert b"systick\x00" in strings(pico.elf) and b"dwt\x00" not in strings(pico.elf)
    assert b"dwt\x00" in strings(m4.elf)


@pytest.mark.parametrize(
    ("core", "attr"), [("cortex-m7", "v7E-M"), ("cortex-m4", "v7E-M"), ("cortex-m0plus", "v6S-M")]
)
def test_every_core_flag_set_builds(tmp_path: Path, core: str, attr: str) -> None:
    """All four cores of BoardConfig compile warning-free (no shipped board is an M7 yet)."""
    base = load_board("sim-pico" if core == "cortex-m0plus" else "sim-m4")
    board = base.model_copy(update={"core": core, "name": f"test-{core}"})
    r = build_firmware(fixture_sources(), board, tmp_path / core)
    attrs = subprocess.run(["arm-none-eabi-readelf", "-A", str(r.elf)], capture_output=True, text=True).stdout
    assert attr in attrs
    assert ("Tag_ABI_VFP_args: VFP registers" in attrs) == (core == "cortex-m7")


def test_program_base_must_match_link_address(tmp_path: Path) -> None:
    base = load_board("sim-nano33ble")
    board = base.model_copy(update={"flash": base.flash.model_copy(update={"base_address": 0})})
    with pytest.raises(StageError, match=r"sim-nano33ble.*0x10000"):
        build_firmware(fixture_sources(), board, tmp_path / "out")


def test_nano33ble_linker_script_starts_after_bootloader() -> None:
    text = render_linker_script(load_board("sim-nano33ble"))
    assert "ORIGIN = 0x00010000, LENGTH = 0xF0000" in text
    assert "ORIGIN = 0x20000000, LENGTH = 0x40000" in text


def test_rebuild_is_a_cache_hit_and_changes_miss(builds, cache_dir: Path, tmp_path: Path) -> None:
    first = builds["sim-m4"]
    again = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / "again", cache_dir=cache_dir)
    assert again.cache_hit and again.status == "cached"
    assert again.build_id == first.build_id and again.firmware_sha256 == first.firmware_sha256
    assert again.elf.read_bytes() == first.elf.read_bytes()
    assert again.footprint == first.footprint
    assert json.loads((tmp_path / "again" / "build.json").read_text())["cache_hit"] is True
    # Without the cache, a fresh build elsewhere is bit-identical (reproducible image).
    fresh = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / "fresh")
    assert not fresh.cache_hit and fresh.firmware_sha256 == first.firmware_sha256
    # Any input change is a different key: a model define, a board, a runtime option.
    changed = build_firmware(fixture_sources(rounds=3), load_board("sim-m4"), tmp_path / "r3", cache_dir=cache_dir)
    assert not changed.cache_hit and changed.build_id != first.build_id
    laps = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / "laps", cache_dir=cache_dir, max_laps=8)
    assert not laps.cache_hit and laps.footprint.ram.bss < first.footprint.ram.bss


def test_compile_error_names_board_command_and_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad_layer.c"
    bad.write_text("int broken(void) { return undeclared_symbol; }\n")
    with pytest.raises(StageError) as exc:
        build_firmware(fixture_sources(extra_sources=[bad]), load_board("sim-pico"), tmp_path / "out")
    msg = str(exc.value)
    assert "sim-pico" in msg and "bad_layer.c" in msg and "undeclared_symbol" in msg
    assert "arm-none-eabi-gcc" in msg and "-mcpu=cortex-m0plus" in msg


def test_warnings_are_errors(tmp_path: Path) -> None:
    warn = tmp_path / "warn.c"
    warn.write_text("int f(int a) { int unused; return a; }\n")
    with pytest.raises(StageError, match="unused"):
        build_firmware(fixture_sources(extra_sources=[warn]), load_board("sim-m4"), tmp_path / "out")


def test_image_too_large_reports_footprint(tmp_path: Path) -> None:
    big = tmp_path / "big_model.c"
    big.write_text(
        '#include "model.h"\n'
        "static const uint8_t big_weights[3u << 20] = {1};\n"
        "static uint8_t arena[MODEL_ARENA_BYTES];\n"
        "uint8_t *model_input(void) { return arena; }\n"
        "const uint8_t *model_output(void) { return arena + MODEL_INPUT_BYTES; }\n"
        "void model_run(void) { arena[MODEL_INPUT_BYTES] = big_weights[arena[0] * 4096u]; }\n"
    )
    sources = ModelSources(sources=[big], include_dirs=[fixture_sources().include_dirs[0]])
    with pytest.raises(FirmwareTooLarge) as exc:
        build_firmware(sources, load_board("sim-m4"), tmp_path / "out")
    fp = exc.value.footprint
    assert fp.fits is False and fp.flash.weights == 3 << 20
    assert fp.flash.total > fp.flash.available
    assert "does not fit" in str(exc.value) and "sim-m4" in str(exc.value)
    assert json.loads((tmp_path / "out" / "footprint.json").read_text())["fits"] is False
