"""The UART registers served in C (harness/sim/uartregs.py, issue 16) against the Python path,
on the fixture model's real firmware: byte-exact round trips of kilobytes of input through the
host link, exactly the same cycles, instructions, GPIO edges and energy for the same traffic,
and a core that parks (simulated time and idle power advance) while the host is silent."""

from __future__ import annotations

import shutil
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_output, fixture_sources

from harness.build import build_firmware
from harness.config import load_board
from harness.dut import DutLink
from harness.dut import protocol as p
from harness.sim.board import SimBoard
from harness.sim.counter import native_error

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")

BOARD = "sim-nano33ble"  # flash cache and flash data reads through mmio: the fullest memory model
BOARDS = [BOARD, "sim-pico"]  # and an M0+ (SysTick counter, other code around the poll loop)
# (block hook, UART registers): C/C, Python block hook with the Python UART, C hook with Python UART
PATHS = {"native": (True, True), "python": (False, False), "c-hook-python-uart": (True, False)}


@pytest.fixture(scope="module")
def elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    assert native_error() is None  # gcc is present wherever arm-none-eabi-gcc is
    out = tmp_path_factory.mktemp("fw")
    return {name: build_firmware(fixture_sources(), load_board(name), out / name).elf for name in BOARDS}


@pytest.fixture
def elf(elfs: dict[str, Path]) -> Path:
    return elfs[BOARD]


def make_board(elf: Path, path: str, board_name: str = BOARD) -> SimBoard:
    native, native_uart = PATHS[path]
    board = SimBoard(load_board(board_name), persist=False, native=native, native_uart=native_uart)
    assert board.native is native and (board.uart_regs is not None) is (native and native_uart)
    board.program(elf)
    return board


def inputs(n: int) -> list[bytes]:
    return [bytes((i * (17 + 2 * k) + 3 * k + 1) & 0xFF for i in range(INPUT_BYTES)) for k in range(n)]


@contextmanager
def served(elf: Path, path: str) -> Iterator[tuple[SimBoard, DutLink]]:
    board = make_board(elf, path)
    board.start()
    try:
        with DutLink(board.serial_url, timeout=30, per_inference_timeout=30) as dut:
            dut.resync()
            yield board, dut
    finally:
        board.stop()


@pytest.mark.parametrize("path", ["native", "python"])
def test_kilobytes_round_trip_through_the_host_link(elf: Path, path: str) -> None:
    with served(elf, path) as (board, dut):
        served_before = board.uart_regs.served if board.uart_regs is not None else 0
        assert dut.identify().input_bytes == INPUT_BYTES
        for data in inputs(4):  # 3,136 bytes of input, 6 KB of hex on the wire
            dut.load_input(data)
            res = dut.infer(1)
            out = dut.results()
            assert out == fixture_output(data)  # the firmware computed on exactly these bytes
            assert res.checksums == [zlib.crc32(out)]
        if board.uart_regs is not None:  # the bytes crossed in C: two register reads per byte
            assert board.uart_regs.served - served_before > 2 * 2 * 4 * INPUT_BYTES


def pipelined_session(elf: Path, path: str, board_name: str) -> tuple[SimBoard, bytes]:
    """Every command of four load/infer/results rounds queued at once (7 KB, more than the C
    FIFO's first allocation), then run until the last reply: no parking on the way, so the run
    is deterministic and the paths can be compared exactly."""
    board = make_board(elf, path, board_name)
    board.run(max_cycles=50_000_000, wall_timeout_s=30, until=lambda: b"m-ready" in board.uart.output())
    board.uart.clear_output()
    stream = []
    for data in inputs(4):
        stream.append(p.db_load_cmd(len(data)))
        stream += [p.db_chunk_cmd(data[i : i + p.DB_CHUNK_BYTES]) for i in range(0, len(data), p.DB_CHUNK_BYTES)]
        stream += [p.infer_cmd(1, 0, 0), p.results_cmd()]
    board.uart.inject("".join(stream).encode())
    replies = len(stream)
    board.run(
        max_cycles=2_000_000_000,
        wall_timeout_s=120,
        until=lambda: board.uart.output().count(b"m-ready") >= replies,
    )
    return board, board.uart.output()


@pytest.mark.parametrize("board_name", BOARDS)
def test_pipelined_traffic_costs_exactly_the_same_on_every_path(elfs: dict[str, Path], board_name: str) -> None:
    runs = {path: pipelined_session(elfs[board_name], path, board_name) for path in PATHS}
    board, out = runs["native"]
    replies = [r.split("\n") for r in out.decode().split(p.READY)[:-1]]
    results = [p.parse_results([ln.strip() for ln in r]) for r in replies if any("m-results=" in ln for ln in r)]
    assert results == [fixture_output(data) for data in inputs(4)]
    t = board.time_s
    for other, (b, o) in runs.items():
        assert o == out, other
        assert (b.cycles, b.insns, b.counter.mem) == (board.cycles, board.insns, board.counter.mem), other
        assert b.bus.edges() == board.bus.edges(), other
        assert b.bus.mean_current(0.0, t) == pytest.approx(board.bus.mean_current(0.0, t), rel=1e-12), other


@pytest.mark.parametrize("path", ["native", "python"])
def test_silent_host_parks_the_core_and_time_advances(elf: Path, path: str) -> None:
    cfg = load_board(BOARD)
    assert cfg.sim is not None
    with served(elf, path) as (board, dut):
        dut.identify()
        time.sleep(0.1)  # the reply is out; the firmware waits for the next command
        t0, i0, w0 = board.time_s, board.insns, board.parked_wall_s
        time.sleep(0.4)
        t1, i1, w1 = board.time_s, board.insns, board.parked_wall_s
        assert dut.identify().input_bytes == INPUT_BYTES  # and it still answers
    assert w1 - w0 >= 0.3  # parked, not spinning in the poll loop
    assert i1 - i0 < 100  # (a spinning core runs millions of instructions in that time)
    assert t1 - t0 >= 0.3  # simulated time kept pace with the host's
    assert float(board.bus.mean_current(t0, t1)) == pytest.approx(cfg.sim.idle_current_a, rel=1e-6)
