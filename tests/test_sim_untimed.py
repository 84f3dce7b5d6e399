"""SimBoard.untimed(): the campaign's output checks run without the flash data-read timing.
Real firmware on the emulated Pico (XIP cache on weight reads): the outputs are the same bytes,
no data read is timed inside the scope, and afterwards the timing model is back in full."""

from __future__ import annotations

import os
import shutil
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

needs_gcc = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None and os.environ.get("CI") != "true",
    reason="needs arm-none-eabi-gcc (required in CI)",
)


@pytest.fixture(scope="module")
def pico_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("untimed")
    b = GraphBuilder("untimed_float", (2, 8, 8), seed=5)
    b.conv(6, 3, pad=1)
    b.pool("maxpool2d", 2)
    b.unary("flatten")
    b.linear(32, act="relu")
    b.linear(5)
    gen = generate(Artifact(b.build()), tmp / "model", dsp=False)
    fw = build_firmware(gen, "sim-pico", tmp / "fw")
    assert fw.elf is not None
    return fw.elf


@needs_gcc
@pytest.mark.parametrize("native", [True, False], ids=["native-counter", "python-counter"])
def test_untimed_scope_keeps_outputs_and_skips_only_the_data_timing(pico_elf: Path, native: bool) -> None:
    board = SimBoard(load_board("sim-pico"), persist=False, native=native)
    board.program(pico_elf)
    board.start()
    inp = np.random.default_rng(2).normal(size=128).astype("<f4").tobytes()
    c = board.counter

    def infer(dut: DutLink) -> tuple[int, int, bytes]:
        reads0 = c.data_reads
        res = dut.infer(1, timeout=300)
        assert res.cycles[0] is not None
        return res.cycles[0], c.data_reads - reads0, dut.results()

    try:
        with DutLink(board.serial_url, timeout=60) as dut:
            dut.resync()
            dut.load_input(inp)
            infer(dut)  # warm the caches
            timed_cycles, timed_reads, timed_out = infer(dut)
            assert board.timed and timed_reads > 0
            with board.untimed():
                assert not board.timed
                infer(dut)  # the scope takes effect from the next slice
                fast_cycles, fast_reads, fast_out = infer(dut)
            assert fast_out == timed_out  # the same computation, bit for bit
            assert fast_reads == 0 and fast_cycles < timed_cycles  # weight reads cost nothing meanwhile
            assert board.timed
            infer(dut)  # refills the data lines the untimed inferences did not bring in
            again_cycles, again_reads, again_out = infer(dut)
    finally:
        board.stop()
    assert again_out == timed_out
    # counts span the whole exchange, whose polling of the UART may read flash once more or less
    assert again_reads == pytest.approx(timed_reads, rel=0.001)
    assert again_cycles == pytest.approx(timed_cycles, rel=0.01)
