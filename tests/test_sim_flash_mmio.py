"""Flash data reads through an mmio region instead of a Unicorn memory hook (harness/sim/flashmap.py).

Real firmware on the real emulator: seed 002's element-pruned float LeNet (CSR weights, an
``ite`` with flash loads in its kernel) on sim-nano33ble. With the old UC_HOOK_MEM_READ its timed
run computed garbage (unicorn-engine/unicorn#2309); it must give the host's output in timed mode,
charge its weight reads, and keep its weights on pages served as data, never as code."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile

from harness.build import build_firmware
from harness.codegen import generate
from harness.codegen.io import encode_input, raw_output
from harness.codegen.reference import quantize_tensor, run_raw
from harness.config import load_board
from harness.dut import DutLink
from harness.ir import Artifact, Graph
from harness.sim.board import SimBoard
from harness.sim.calibrate import paper_lenet
from harness.sim.flashmap import PAGE_SIZE

needs_gcc = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None and os.environ.get("CI") != "true",
    reason="needs arm-none-eabi-gcc (required in CI)",
)


@pytest.fixture(scope="module")
def csr_lenet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Graph, Path]:
    tmp = tmp_path_factory.mktemp("flash_mmio")
    graph = paper_lenet((32, 64, 128), 0.95)  # float32, 95 % element pruning: CSR kernels
    gen = generate(Artifact(graph), tmp / "model", dsp=True, sparse="auto")
    fw = build_firmware(gen, "sim-nano33ble", tmp / "fw")
    assert fw.elf is not None
    return graph, fw.elf


def _section(elf: Path, name: str) -> tuple[int, int]:
    with elf.open("rb") as fh:
        sec = ELFFile(fh).get_section_by_name(name)
        assert sec is not None
        return sec["sh_addr"], sec["sh_size"]


@needs_gcc
@pytest.mark.parametrize(
    "native", [True, pytest.param(False, marks=pytest.mark.slow)], ids=["native-counter", "python-counter"]
)
def test_csr_float_lenet_gives_the_hosts_output_in_timed_mode(csr_lenet: tuple[Graph, Path], native: bool) -> None:
    graph, elf = csr_lenet
    x = np.random.default_rng(7).normal(size=graph.tensor(graph.inputs[0]).shape)
    host = np.asarray(run_raw(graph, quantize_tensor("float32", graph.tensor(graph.inputs[0]), x[None])))[0]
    board = SimBoard(load_board("sim-nano33ble"), persist=False, native=native)
    board.program(elf)
    board.start()
    try:
        with DutLink(board.serial_url, timeout=120) as dut:
            dut.resync()
            dut.load_input(encode_input(graph, x))
            reads0 = board.counter.data_reads
            res = dut.infer(1, timeout=600)
            assert board.timed and res.cycles[0] is not None
            dev = raw_output(graph, dut.results())
            reads = board.counter.data_reads - reads0
            with board.untimed():
                dut.infer(1, timeout=600)
                untimed = raw_output(graph, dut.results())
    finally:
        board.stop()
    assert int(np.argmax(dev)) == int(np.argmax(host))
    np.testing.assert_allclose(dev.reshape(-1), host.reshape(-1), rtol=1e-4, atol=1e-4)
    assert np.array_equal(dev, untimed)  # the timing model never changes what is computed
    # every weight is read from flash at least once per inference (the CSR values alone are more)
    nnz = sum(int(np.count_nonzero(w)) for w in graph.constants.values())
    assert reads > nnz


@needs_gcc
def test_weights_sit_on_data_pages_and_code_pages_are_remembered(csr_lenet: tuple[Graph, Path]) -> None:
    _, elf = csr_lenet
    ro_addr, ro_size = _section(elf, ".rodata")
    text_addr, text_size = _section(elf, ".text")
    assert ro_addr % PAGE_SIZE == 0 and ro_addr >= text_addr + text_size  # the linker script's ALIGN
    board = SimBoard(load_board("sim-nano33ble"), persist=False)
    fmap = board.flash_map
    assert fmap.split  # flash data reads cost wait states on this board
    board.program(elf)
    assert fmap.code_pages == set() and not fmap.is_code(text_addr)  # nothing executed yet
    board.start()
    try:
        with DutLink(board.serial_url, timeout=120) as dut:
            dut.resync()
            dut.load_input(bytes(dut.identify().input_bytes))
            dut.infer(1, timeout=600)
        board.halt()
        assert fmap.is_code(board.pc)
        assert all(not fmap.is_code(a) for a in range(ro_addr, ro_addr + ro_size, PAGE_SIZE))
        assert max(fmap.code_pages) * PAGE_SIZE + board.flash.base < ro_addr
        # reads of the flash through the debugger see the bytes, wherever the page is served from
        assert board.debug_read(ro_addr, 64) == board.flash.read(ro_addr, 64)
        code_pages = set(fmap.code_pages)
        board.reset(halt=True)  # a new engine: the known code pages are mapped as one run at once
        assert fmap.code_pages == code_pages
        groups = sum(1 for p in code_pages if p - 1 not in code_pages)  # runs of consecutive pages
        assert len([r for r in fmap.runs if r.code]) == groups and fmap.is_code(board.pc)
        board.program(elf, reset=False)  # a new image: its code is found again
        assert fmap.code_pages == set()
    finally:
        board.stop()


def _image(base: int) -> bytes:
    """Hand-assembled Thumb at ``base`` (page 0): a literal load of a data address, a load from
    the data page (page 1), a literal branch to page 2, which branches back to a 32-bit
    instruction straddling pages 3 and 4, then semihosting SYS_EXIT."""
    img = bytearray(b"\xff" * 5 * PAGE_SIZE)

    def put(offset: int, *halfwords: int) -> None:
        for i, h in enumerate(halfwords):
            img[offset + 2 * i : offset + 2 * i + 2] = h.to_bytes(2, "little")

    def word(offset: int, value: int) -> None:
        img[offset : offset + 4] = value.to_bytes(4, "little")

    word(0, 0x2000_1000)  # initial SP
    word(4, base + 0x40 | 1)  # reset vector
    put(0x40, 0x4A02, 0x6811, 0x4B02, 0x4718)  # ldr r2,[pc,#8]; ldr r1,[r2]; ldr r3,[pc,#8]; bx r3
    word(0x4C, base + PAGE_SIZE)  # literal: the data word
    word(0x50, base + 2 * PAGE_SIZE | 1)  # literal: page 2
    word(PAGE_SIZE, 0xDEADBEEF)  # page 1: data only
    put(2 * PAGE_SIZE, 0x4B00, 0x4718)  # page 2: ldr r3,[pc,#0]; bx r3
    word(2 * PAGE_SIZE + 4, base + 4 * PAGE_SIZE - 4 | 1)
    put(4 * PAGE_SIZE - 4, 0xBF00, 0xF04F, 0x0018, 0xBEAB)  # nop; mov.w r0,#0x18 (straddles); bkpt 0xab
    return bytes(img)


@pytest.mark.parametrize("native", [True, False], ids=["native-counter", "python-counter"])
def test_data_pages_are_read_through_the_model_and_fetches_claim_code_pages(tmp_path: Path, native: bool) -> None:
    from unicorn import arm_const as uca

    board = SimBoard(load_board("sim-nano33ble"), persist=False, native=native)
    base = board.config.program_base
    image = tmp_path / "pages.bin"
    image.write_bytes(_image(base))
    board.program(image)
    first = (base - board.flash.base) // PAGE_SIZE
    fmap, c = board.flash_map, board.counter

    fetch_misses = [0]

    def run() -> tuple[int, int]:
        board.reset(halt=True)
        reads0, cycles0, misses0 = c.data_reads, c.cycles, c.fetch_misses
        assert board.run(max_cycles=10_000, wall_timeout_s=10).reason == "exit"
        assert board.read_core_register(uca.UC_ARM_REG_R1) == 0xDEADBEEF
        fetch_misses[0] = c.fetch_misses - misses0
        return c.data_reads - reads0, c.cycles - cycles0

    # three literals on code pages (charged from their blocks) and the word on the data page (mmio)
    reads, timed = run()
    assert reads == 4
    assert fmap.code_pages == {first, first + 2, first + 3, first + 4}  # page 4 by the straddling fetch
    assert not fmap.is_code(base + PAGE_SIZE) and fmap.is_code(base + 0x40)
    assert run() == (4, timed)  # again after a reset, with the code pages mapped at once
    timed_misses = fetch_misses[0]
    assert timed_misses > 0  # the reset cleared the instruction cache
    with board.untimed():
        reads, untimed = run()
        assert reads == 0 and fmap.plain_data  # the same values, nothing charged
        assert fetch_misses[0] == 0  # nor the instruction cache's misses
    miss = board.memory.cache.miss_cycles if board.memory.cache else 0
    # sim-nano33ble: 2 wait states per data read
    assert timed - untimed == 4 * board.memory.data_wait_cycles + timed_misses * miss
    assert run() == (4, timed) and not fmap.plain_data
