"""The firmware on the in-house emulator (harness.sim.board): cycle counts from DWT (M4) and
SysTick (M0+) agree with the GPIO window, warm-ups leave the pin alone, idle gaps are slept,
and a SysTick lap beyond 2^24 cycles is reported as wrapped."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_output, fixture_sources

from harness.build import build_firmware
from harness.config import load_board
from harness.dut import DutLink, DutProtocolError
from harness.sim import board as sim_board

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")

# GPIO-high window minus the reported lap: the pin writes and call/return around the counter
# reads. docs/protocol.md documents it; a regression that moves work into the window fails here.
MAX_WINDOW_EXCESS = 100


def window_excess_bound(cfg) -> int:
    """MAX_WINDOW_EXCESS plus, on boards with a flash cache (harness/sim/memmodel.py), one line
    fill on each of the two pin-write/counter-read paths: a long inference can evict them."""
    cache = cfg.sim.cache if cfg.sim is not None else None
    return MAX_WINDOW_EXCESS + (2 * cache.miss_cycles if cache is not None else 0)


@contextmanager
def running(board_name: str, elf: Path) -> Iterator[tuple[object, DutLink]]:
    board = sim_board.SimBoard(load_board(board_name), persist=False)
    board.program(elf)
    board.start()
    try:
        with DutLink(board.serial_url, timeout=10) as dut:
            dut.resync()
            yield board, dut
    finally:
        board.stop()


def _check_laps_against_edges(res, edges, clock_hz: int, gap_us: int, excess: int = MAX_WINDOW_EXCESS) -> None:
    assert [e.level for e in edges] == [1, 0] * len(res.cycles)  # nothing for the warm-up
    highs = [f.cycle - r.cycle for r, f in zip(edges[::2], edges[1::2], strict=True)]
    lows = [r.cycle - f.cycle for f, r in zip(edges[1:-1:2], edges[2::2], strict=True)]
    for lap, window in zip(res.cycles, highs, strict=True):
        assert lap is not None and 0 <= window - lap <= excess, (lap, window)
    assert all(low >= gap_us * clock_hz // 1_000_000 for low in lows)  # the idle gap was slept


@pytest.mark.parametrize(("board_name", "counter"), [("sim-m4", "dwt"), ("sim-pico", "systick")])
def test_laps_match_gpio_window(tmp_path: Path, board_name: str, counter: str) -> None:
    cfg = load_board(board_name)
    fw = build_firmware(fixture_sources(rounds=2), cfg, tmp_path / "fw")
    inp = bytes((i * 13 + 5) & 0xFF for i in range(INPUT_BYTES))
    with running(board_name, fw.elf) as (board, dut):
        info = dut.identify()
        assert info.counter == counter and info.counter_hz == cfg.clock_hz
        assert 0 < info.counter_overhead < 100
        dut.load_input(inp)
        before = len(board.bus.edges())
        res = dut.infer(3, warmup=2, gap_us=500)
        edges = board.bus.edges()[before:]
        assert res.checksums == [zlib.crc32(fixture_output(inp, rounds=2))] * 3
        _check_laps_against_edges(res, edges, cfg.clock_hz, 500, window_excess_bound(cfg))
    # Twice the work, about twice the cycles: the count measures model_run, not a constant.
    one = build_firmware(fixture_sources(rounds=1), cfg, tmp_path / "fw1")
    with running(board_name, one.elf) as (_, dut1):
        dut1.load_input(inp)
        single = dut1.infer(1).cycles[0]
    assert single is not None and 1.8 < res.cycles[0] / single < 2.2


def test_systick_lap_over_2_to_24_cycles_is_flagged_wrapped(tmp_path: Path) -> None:
    # Enough rounds of the fixture for > 2^24 cycles, derived from one round on the model.
    one = build_firmware(fixture_sources(rounds=1), load_board("sim-pico"), tmp_path / "fw1")
    with running("sim-pico", one.elf) as (_, dut1):
        dut1.load_input(bytes(INPUT_BYTES))
        per_round = dut1.infer(1, warmup=1).cycles[0]
    assert per_round is not None
    rounds = int(1.2 * (1 << 24) / per_round) + 1
    fw = build_firmware(fixture_sources(rounds=rounds), load_board("sim-pico"), tmp_path / "fw")
    with running("sim-pico", fw.elf) as (board, dut):
        dut.load_input(bytes(INPUT_BYTES))
        before = len(board.bus.edges())
        res = dut.infer(1)
        edges = board.bus.edges()[before:]
    assert res.cycles == [None] and res.wrapped
    assert edges[1].cycle - edges[0].cycle > 1 << 24  # the GPIO still measures it


def test_reset_command_reboots_the_board(tmp_path: Path) -> None:
    fw = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / "fw")
    with running("sim-m4", fw.elf) as (_, dut):
        dut.load_input(bytes(INPUT_BYTES))
        lines = dut.reset()
        assert lines[-2:] == ["m-boot=sim-m4", "m-ready"]
        # RAM state is gone after the reset: the input must be loaded again.
        with pytest.raises(DutProtocolError, match="e-infer-no-input"):
            dut.infer(1)
        assert dut.identify().build_id == fw.build_id
