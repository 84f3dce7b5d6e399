"""Real Mbed CE builds of the three real boards with `harness build` from a model artifact,
against the vendored tree (../shared/vendor/mbed-ce) or $MBED_OS_PATH.

One build per board per session (session fixture, kept Mbed build folders in a session temp
dir: about 40 s per board on 2 cores); every check below reads those builds. The ELF is checked
for where it is linked (image, vector table and entry at the board's program base), for the
model and protocol symbols, and against footprint.json. The tree must be left untouched."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from harness.config import load_board

VENDORED = Path(__file__).resolve().parents[1] / ".." / "shared" / "vendor" / "mbed-ce"
TREE = Path(os.environ.get("MBED_OS_PATH") or VENDORED).resolve()
BOARDS = ["numaker-pfm-m487", "nano33ble", "pico"]
HOW = ("needs an Mbed CE tree: `git clone --depth 1 --recurse-submodules https://github.com/mbed-ce/mbed-os.git` "
       "and set MBED_OS_PATH to it")  # fmt: skip
TOOLS = ("cmake", "ninja", "arm-none-eabi-g++")
if os.environ.get("CI") == "true" and VENDORED.is_dir():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, f"CI has the Mbed CE tree but not {missing} (scripts/setup.sh installs them)"
pytestmark = [
    pytest.mark.skipif(not (TREE / "tools" / "cmake").is_dir(), reason=HOW),
    pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"),
    pytest.mark.slow,
]
# The firmware's protocol loop and the model API it calls (harness/codegen + common/bench_main.c).
SYMBOLS = ("bench_run", "model_run", "model_input", "model_output", "hal_init", "hal_gpio_set", "main")


def _snapshot(tree: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root, dirs, files in os.walk(tree):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            out[os.path.relpath(p, tree)] = (st.st_mtime_ns, st.st_size)
    return out


@pytest.fixture(scope="session")
def mbed_session(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`harness build` for each board, with its own cache and kept-build folders."""
    from harness.codegen import examples
    from harness.ir import Artifact

    root = tmp_path_factory.mktemp("mbed-ce")
    calib = np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32)
    art = Artifact(graph=examples.quantize(examples.lenet(seed=5), "int8", calib)).save(root / "art")
    env = {**os.environ, "MBED_OS_PATH": str(TREE), "HARNESS_CACHE_DIR": str(root / "cache"),
           "HARNESS_MBED_BUILD_DIR": str(root / "mbed-build"), "COLUMNS": "200"}  # fmt: skip
    before = _snapshot(TREE)
    runs = {}
    for board in BOARDS:
        proc = subprocess.run([sys.executable, "-m", "harness.cli", "build", "--model", str(art), "--board", board,
                               "--out", str(root / board)], capture_output=True, text=True, env=env, timeout=1200)  # fmt: skip
        runs[board] = proc
    return {"root": root, "art": art, "env": env, "runs": runs, "before": before, "after": _snapshot(TREE)}


@pytest.mark.parametrize("board", BOARDS)
def test_harness_build_makes_elf_bin_hex_footprint(mbed_session: dict, board: str) -> None:
    proc = mbed_session["runs"][board]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{board}: built" in proc.stdout
    out = mbed_session["root"] / board
    for name in ("firmware.elf", "firmware.bin", "firmware.hex", "footprint.json", "build.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["status"] == "built" and manifest["template"] == "mbed"
    cfg = (out / "mbed" / "CMakeLists.txt").read_text()
    assert f'set(MBED_TARGET "{load_board(board).flash.mbed_target}"' in cfg


def test_the_tree_is_left_unchanged(mbed_session: dict) -> None:
    assert all(r.returncode == 0 for r in mbed_session["runs"].values())
    before, after = mbed_session["before"], mbed_session["after"]
    assert sorted(set(after) - set(before)) == [], "files created in the Mbed tree"
    changed = [k for k in before if after.get(k) != before[k]]
    assert changed == [], f"files changed or removed in the Mbed tree: {changed[:10]}"


def _vector_table(elf: ELFFile, addr: int) -> tuple[int, int]:
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_filesz"]:
            off = addr - seg["p_vaddr"]
            return struct.unpack_from("<II", seg.data(), off)
    raise AssertionError(f"no loaded bytes at {addr:#x}")


@pytest.mark.parametrize("board", BOARDS)
def test_elf_is_linked_at_the_program_base(mbed_session: dict, board: str) -> None:
    cfg = load_board(board)
    out = mbed_session["root"] / board
    with open(out / "firmware.elf", "rb") as fh:
        elf = ELFFile(fh)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"] > 0]
        lowest = min(s["p_paddr"] for s in loads)
        assert lowest == cfg.program_base, f"image starts at {lowest:#x}, board programs it at {cfg.program_base:#x}"
        # RP2040: the 256-byte second-stage bootloader comes first, the vector table follows it
        vtor = cfg.program_base + (0x100 if cfg.mcu.startswith("RP2040") else 0)
        sp, reset = _vector_table(elf, vtor)
        mem = cfg.memory
        assert mem.ram_base < sp <= mem.ram_base + mem.ram_size, f"initial SP {sp:#x} not in RAM"
        assert reset & 1, "reset vector without the Thumb bit"
        end = mem.flash_base + mem.flash_size
        assert cfg.program_base <= reset < end and cfg.program_base <= elf.header["e_entry"] < end
        if not cfg.mcu.startswith("RP2040"):  # the Pico SDK's ELF entry is its crt0 _entry_point, not the vector
            assert reset == elf.header["e_entry"] | 1
        symtab = elf.get_section_by_name(".symtab")
        names = {s.name for s in symtab.iter_symbols()}
    arena = json.loads((out / "footprint.json").read_text())["arena_symbol"]
    assert {*SYMBOLS, arena} <= names, sorted({*SYMBOLS, arena} - names)
    # the .bin is the flash image from the program base: its first bytes are the ELF's
    first = (out / "firmware.bin").read_bytes()[:8]
    with open(out / "firmware.elf", "rb") as fh:
        seg = min((s for s in ELFFile(fh).iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"] > 0),
                  key=lambda s: s["p_paddr"])  # fmt: skip
        assert first == seg.data()[:8]


def _size_a(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    rows = [ln.split() for ln in out.splitlines()[2:] if ln.strip() and not ln.startswith("Total")]
    return {r[0]: int(r[1]) for r in rows if len(r) == 3}


@pytest.mark.parametrize("board", BOARDS)
def test_footprint_equals_the_elf(mbed_session: dict, board: str) -> None:
    out = mbed_session["root"] / board
    fp = json.loads((out / "footprint.json").read_text())
    sizes = _size_a(out / "firmware.elf")
    assert fp["sections"] == {k: v for k, v in sizes.items() if k in fp["sections"]}
    assert {".text", ".data", ".bss", ".heap"} <= set(fp["sections"])  # Mbed's own sections are in it
    with open(out / "firmware.elf", "rb") as fh:
        elf = ELFFile(fh)
        flash_bytes = sum(s["p_filesz"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"])
    assert fp["flash"]["total"] == flash_bytes  # every byte programmed into flash
    berkeley = subprocess.run(["arm-none-eabi-size", str(out / "firmware.elf")], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1].split()  # fmt: skip
    assert fp["berkeley"] == {"text": int(berkeley[0]), "data": int(berkeley[1]), "bss": int(berkeley[2])}
    ram = fp["ram"]
    assert ram["heap"] == sizes[".heap"] and ram["total"] == ram["data"] + ram["bss"] + ram["arena"] + ram["stack"] + ram["code"]
    assert ram["total"] < ram["available"] and fp["fits"] is True
    assert fp["arena_symbol"] and ram["arena"] > 0 and fp["flash"]["weights"] > 0
    assert fp["flash"]["available"] == load_board(board).memory.flash_size - load_board(board).memory.app_offset


def test_second_build_reuses_the_kept_build_folder(mbed_session: dict) -> None:
    """A different model for a board that was built: only the model and main recompile."""
    from harness.codegen import examples
    from harness.ir import Artifact

    root = mbed_session["root"]
    calib = np.random.default_rng(1).random((4, 1, 28, 28)).astype(np.float32)
    art = Artifact(graph=examples.quantize(examples.lenet(seed=6), "int8", calib)).save(root / "art2")
    ninja_log = next((root / "mbed-build").glob("pico-*/build/.ninja_log"))
    seen = len(ninja_log.read_text().splitlines())
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "build", "--model", str(art), "--board", "pico",
                           "--out", str(root / "pico2")], capture_output=True, text=True, env=mbed_session["env"],
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ninja appends one line per step it ran: the model's sources, main, the link; no Mbed OS object
    rebuilt = [ln.split("\t")[3] for ln in ninja_log.read_text().splitlines()[seen:]]
    assert any("model" in t for t in rebuilt) and any(t.endswith("bench_firmware.elf") for t in rebuilt)
    assert not [t for t in rebuilt if t.startswith("mbed-os/")], rebuilt
    a = json.loads((root / "pico" / "build.json").read_text())
    b = json.loads((root / "pico2" / "build.json").read_text())
    assert a["firmware_sha256"] != b["firmware_sha256"] and b["status"] == "built"


def test_campaign_on_an_unreachable_rig_records_the_build_then_the_rig_failure(mbed_session: dict, tmp_path: Path) -> None:
    """The tree comes from the rig file's mbed_os here ($MBED_OS_PATH unset); the kept build folder
    of the session makes the Mbed part incremental."""
    from realboard_campaign import env_without_tree, events, run_campaign, write_campaign

    camp = write_campaign(tmp_path, ["pico"], mbed_os=TREE)
    env = env_without_tree(HARNESS_MBED_BUILD_DIR=mbed_session["root"] / "mbed-build")
    proc = run_campaign(camp, env)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    ev = [(stage, msg) for cid, stage, msg in events(tmp_path / "results" / "realboards") if cid == "ll/none/uint8/pico"]
    stages = [s for s, _ in ev]
    assert ("status", "built") in ev and stages.index("build") < stages.index("measure"), ev
    failed = [m for s, m in ev if s == "status" and m.startswith("failed")]
    assert failed and "127.0.0.1::9" in failed[-1] and "refused" in failed[-1].lower(), ev
    fw = tmp_path / "results" / "realboards" / "firmware"
    assert len(list(fw.rglob("firmware.hex"))) == 1 and len(list(fw.rglob("footprint.json"))) == 1


def test_same_build_again_is_a_cache_hit(mbed_session: dict) -> None:
    root = mbed_session["root"]
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "build", "--model", str(mbed_session["art"]), "--board",
                           "nano33ble", "--out", str(root / "nano-again")], capture_output=True, text=True,
                          env=mbed_session["env"], timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nano33ble: cached" in proc.stdout
    a = json.loads((root / "nano33ble" / "build.json").read_text())
    b = json.loads((root / "nano-again" / "build.json").read_text())
    assert b["cache_hit"] is True and b["firmware_sha256"] == a["firmware_sha256"]


def test_image_too_large_for_the_board_is_does_not_fit(mbed_session: dict, tmp_path: Path) -> None:
    """3 MB of weights on the Pico's 2 MB flash: Mbed's link fails; the fit check says by how much."""
    from firmware_fixtures.fixture_model import fixture_sources

    from harness.build import FirmwareTooLarge, ModelSources, build_firmware

    big = tmp_path / "big_model.c"
    big.write_text(
        '#include "model.h"\n'
        "const uint8_t big_weights[3u << 20] = {1};\n"
        "static uint8_t arena[MODEL_ARENA_BYTES];\n"
        "uint8_t *model_input(void) { return arena; }\n"
        "const uint8_t *model_output(void) { return arena + MODEL_INPUT_BYTES; }\n"
        "void model_run(void) { arena[MODEL_INPUT_BYTES] = big_weights[arena[0] * 4096u]; }\n"
    )
    sources = ModelSources(sources=[big], include_dirs=[fixture_sources().include_dirs[0]], weights_bytes=3 << 20)
    with pytest.raises(FirmwareTooLarge) as exc:
        build_firmware(sources, load_board("pico"), tmp_path / "out", mbed_os=TREE,
                       mbed_work_dir=mbed_session["root"] / "mbed-build")  # fmt: skip
    fp = exc.value.footprint
    assert fp.fits is False and "pico" in str(exc.value) and "overflowed by" in str(exc.value)
    over = sum(fp.linker_overflow.values())
    assert fp.flash.total is not None and over > (1 << 20) - 4096 and fp.flash.total == fp.flash.available + over
    assert json.loads((tmp_path / "out" / "footprint.json").read_text())["fits"] is False
    assert not (tmp_path / "out" / "firmware.elf").exists()
