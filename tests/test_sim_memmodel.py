"""The simulated memory system (harness/sim/memmodel.py) and the RP2040 boot-ROM float
(harness/sim/romfloat.py): the LRU cache, the native and Python counters agreeing cycle for
cycle on a cached board running real float firmware through the emulated ROM, and that
firmware's output matching the same model on a hardware-FPU board."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from harness.build import build_firmware
from harness.codegen import generate
from harness.codegen.examples import GraphBuilder
from harness.config import load_board
from harness.dut import DutLink
from harness.ir import Artifact
from harness.sim.board import SimBoard
from harness.sim.errors import SimError
from harness.sim.memmodel import CacheSpec, LruCache, MemorySystem
from harness.sim.romfloat import OPS, rom_float_op, rom_image

needs_gcc = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None and os.environ.get("CI") != "true",
    reason="needs arm-none-eabi-gcc (required in CI)",
)


def test_lru_cache_hits_misses_and_evicts() -> None:
    lru = LruCache(CacheSpec(sets=2, ways=2, line_shift=3, miss_cycles=10, data=True))
    assert not lru.access(0x00) and lru.access(0x04)  # same 8-byte line
    assert not lru.access(0x10) and not lru.access(0x20)  # set 0 now holds lines 4, 2
    assert not lru.access(0x00)  # line 0 was the least recently used: evicted
    assert lru.access(0x20) and not lru.access(0x08)  # set 1 untouched so far


def test_board_memory_systems_follow_their_settings() -> None:
    pico = load_board("sim-pico")
    assert pico.sim is not None and pico.sim.cache is not None
    mem = MemorySystem.for_board(pico.sim, pico.memory.flash_base, pico.memory.flash_size)
    assert mem.cache == CacheSpec(sets=1024, ways=2, line_shift=3, miss_cycles=pico.sim.cache.miss_cycles, data=True)
    assert mem.fetch_wait_states == 0 and mem.charges_flash_data  # fetches pay misses only
    m4 = load_board("sim-m4")
    assert m4.sim is not None
    flat = MemorySystem.for_board(m4.sim, 0, m4.memory.flash_size)
    assert flat.cache is None and not flat.charges_flash_data


def _bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def _float(u: int) -> float:
    return struct.unpack("<f", struct.pack("<I", u))[0]


def test_rom_float_ops_round_like_ieee_single_and_flush_denormals() -> None:
    by_name = {op.name: op.op for op in OPS}
    assert _float(rom_float_op(by_name["_fadd"], _bits(1.5), _bits(2.25))) == 3.75
    assert _float(rom_float_op(by_name["_fmul"], _bits(0.1), _bits(3.0))) == np.float32(0.1) * np.float32(3.0)
    assert rom_float_op(by_name["_fmul"], _bits(1e-20), _bits(1e-20)) == 0  # underflow flushed to +0
    assert rom_float_op(by_name["_float2int"], _bits(-1.5), 0) == (-2) & 0xFFFFFFFF  # towards -inf
    assert rom_float_op(by_name["_fcmp"], _bits(1.0), _bits(2.0)) == 0xFFFFFFFF
    rom = rom_image()
    assert rom[0x10:0x13] == b"Mu\x01"  # the datasheet's magic, then the table pointers
    data_table = int.from_bytes(rom[0x16:0x18], "little")
    assert rom[data_table : data_table + 2] == b"SF"


def _float_model(tmp: Path):
    b = GraphBuilder("tiny_float", (2, 6, 6), seed=3)
    b.conv(4, 3, pad=1)
    b.pool("maxpool2d", 2)
    b.unary("flatten")
    b.linear(5)
    g = b.build()
    return g, generate(Artifact(g), tmp / "model", dsp=False)


def _infer(board_name: str, elf: Path, inp: bytes, native: bool = True) -> tuple[int, bytes, SimBoard]:
    board = SimBoard(load_board(board_name), persist=False, native=native)
    board.program(elf)
    board.start()
    try:
        with DutLink(board.serial_url, timeout=60) as dut:
            dut.resync()
            dut.load_input(inp)
            res = dut.infer(1, warmup=1, timeout=300)
            out = dut.results()
    finally:
        board.stop()
    assert res.cycles[0] is not None
    return res.cycles[0], out, board


@needs_gcc
def test_native_and_python_counters_agree_on_cached_rom_float_firmware(tmp_path: Path) -> None:
    _graph, gen = _float_model(tmp_path)
    fw = build_firmware(gen, "sim-pico", tmp_path / "pico")
    inp = np.random.default_rng(0).normal(size=72).astype("<f4").tobytes()
    c_native, out_native, b_native = _infer("sim-pico", fw.elf, inp, native=True)
    c_py, out_py, b_py = _infer("sim-pico", fw.elf, inp, native=False)
    assert (c_native, out_native) == (c_py, out_py)
    assert b_native.counter.rom_calls > 0 and b_native.counter.rom_calls == b_py.counter.rom_calls
    assert b_native.counter.fetch_misses == b_py.counter.fetch_misses > 0
    # the same model on the FPU board computes the same outputs (to float rounding)
    fw4 = build_firmware(gen, "sim-m4", tmp_path / "m4")
    _, out_m4, _ = _infer("sim-m4", fw4.elf, inp)
    got, want = np.frombuffer(out_native, "<f4"), np.frombuffer(out_m4, "<f4")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


@needs_gcc
def test_native_and_python_counters_agree_on_an_m4_with_flash_wait_states(tmp_path: Path) -> None:
    # sim-nano33ble: I-code cache lookups, wait states charged on weight reads (mmio data pages), and
    # the M4 refill extra for 32-bit branch targets at odd halfwords, in both counters
    _graph, gen = _float_model(tmp_path)
    fw = build_firmware(gen, "sim-nano33ble", tmp_path / "nano")
    inp = np.random.default_rng(1).normal(size=72).astype("<f4").tobytes()
    c_native, out_native, b_native = _infer("sim-nano33ble", fw.elf, inp, native=True)
    c_py, out_py, b_py = _infer("sim-nano33ble", fw.elf, inp, native=False)
    assert (c_native, out_native) == (c_py, out_py)
    assert b_native.counter.data_reads == b_py.counter.data_reads > 0
    assert b_native.counter.fp == b_py.counter.fp > 0


def test_debugger_reads_the_boot_rom_and_cannot_write_it() -> None:
    board = SimBoard(load_board("sim-pico"), persist=False)
    assert board.debug_read(0x10, 4) == b"Mu\x01\x02"
    with pytest.raises(SimError, match="read-only boot ROM"):
        board.debug_write(0x10, b"\0\0\0\0")
