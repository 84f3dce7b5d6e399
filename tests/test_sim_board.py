"""The emulated board on real cross-compiled firmware (tests/sim_firmware): UART over pyserial,
GPIO edges vs the firmware's own cycle count, SysTick/WFI sleep, power segments, faults,
timeouts, resets, persistence, and native vs Python counting."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.sim.board import SimBoard
from harness.sim.errors import SimError, SimFault, SimImageError, SimTimeout

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")

BOARDS = ["sim-m4", "sim-pico"]
# The firmware reads its counter a few instructions before raising / after lowering the pin.
MAX_WINDOW_SLACK = 40


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    out = tmp_path_factory.mktemp("fw")
    images = {}
    for name in BOARDS:
        cfg = load_board(name)
        images[(name, "")] = build_firmware(cfg, out)
        images[(name, "BOOT_FAULT")] = build_firmware(cfg, out, ("BOOT_FAULT",))
        images[(name, "BOOT_HANG")] = build_firmware(cfg, out, ("BOOT_HANG",))
    return images


def booted(name: str, elf: Path, **kw: object) -> SimBoard:
    board = SimBoard(load_board(name), persist=False, **kw)
    board.program(elf)
    board.run(max_cycles=10_000_000, wall_timeout_s=5, until=lambda: b"ready\n" in board.uart.output())
    return board


def command(board: SimBoard, line: str, expect: bytes) -> str:
    start = len(board.uart.output())
    board.uart.inject(line.encode() + b"\n")
    board.run(
        max_cycles=2_000_000_000, wall_timeout_s=20, until=lambda: expect in board.uart.output()[start:]
    )
    return board.uart.output()[start:].decode()


@pytest.mark.parametrize("name", BOARDS)
def test_gpio_pulse_matches_self_reported_cycles(firmware, name: str) -> None:
    board = booted(name, firmware[(name, "")])
    command(board, "bench 1", b"result=")  # warm the flash cache: cold misses outside the window differ
    for n in (3, 40):
        before = len(board.bus.edges())
        reply = command(board, f"bench {n}", b"result=")
        fw_cycles = int(re.search(r"cycles=(\d+)", reply).group(1))
        rise, fall = board.bus.edges()[before:]
        assert (rise.level, fall.level) == (1, 0)
        width = fall.cycle - rise.cycle
        assert 0 <= fw_cycles - width <= MAX_WINDOW_SLACK, (fw_cycles, width)
        assert fall.time_s - rise.time_s == pytest.approx(width / board.clock_hz)
    # more work, proportionally more cycles: the count follows the instructions executed
    assert 10 < width / (board.bus.edges()[-3].cycle - board.bus.edges()[-4].cycle) < 15


def test_cycle_model_distinguishes_cores(firmware) -> None:
    m4 = command(booted("sim-m4", firmware[("sim-m4", "")]), "bench 20", b"result=")
    m0 = command(booted("sim-pico", firmware[("sim-pico", "")]), "bench 20", b"result=")
    c4, c0 = (int(re.search(r"cycles=(\d+)", r).group(1)) for r in (m4, m0))
    # same C code: the M0+ (no MLA, Thumb-1 only) needs more cycles; with the XIP cache warm
    # (memmodel) the flash adds nothing, so the gap is the cores' instruction timing only
    assert c0 > 1.1 * c4
    assert re.search(r"result=(\d+)", m4).group(1) == re.search(r"result=(\d+)", m0).group(1)


def test_uart_is_a_pyserial_socket(firmware) -> None:
    board = SimBoard(load_board("sim-m4"), persist=False)
    board.program(firmware[("sim-m4", "")])
    try:
        with serial.serial_for_url(board.serial_url, timeout=5) as port:
            board.start()
            assert port.readline() == b"ready\n"
            port.write(b"ping\n")
            assert port.readline() == b"pong\n"
            port.write(b"bench 5\n")
            assert port.readline().startswith(b"cycles=")
    finally:
        board.stop()
    assert board.error is None


@pytest.mark.parametrize("name", BOARDS)
def test_wfi_sleeps_systick_periods_at_idle_current(firmware, name: str) -> None:
    board = booted(name, firmware[(name, "")])
    sim = board.config.sim
    t0 = board.time_s
    c0 = board.cycles
    command(board, "sleep 50", b"slept")
    assert board.cycles - c0 >= 50 * 1000  # 50 SysTick periods of 1000 cycles were slept
    assert board.cycles - c0 < 50 * 1000 + 20_000
    # mostly asleep: the mean current over the command is close to the idle current
    mean = board.bus.mean_current(np.array([t0]), np.array([board.time_s]))[0]
    assert sim.idle_current_a <= mean < sim.idle_current_a + 0.2 * (sim.active_current_a - sim.idle_current_a)


def test_energy_in_gpio_window_follows_power_model(firmware) -> None:
    board = booted("sim-m4", firmware[("sim-m4", "")])
    sim = board.config.sim
    command(board, "bench 30", b"result=")
    rise, fall = board.bus.edges()[-2:]
    mean = board.bus.mean_current(np.array([rise.time_s]), np.array([fall.time_s]))[0]
    # the MAC loop is 1 load in 6 instructions: active + mem_current * ~1/6
    assert mean == pytest.approx(sim.active_current_a + sim.mem_current_a / 6, rel=0.02)
    assert mean > sim.active_current_a


@pytest.mark.parametrize("name", BOARDS)
def test_fault_names_address_and_instruction(firmware, name: str) -> None:
    board = SimBoard(load_board(name), persist=False)
    board.program(firmware[(name, "BOOT_FAULT")])
    with pytest.raises(SimFault) as info:
        board.run(max_cycles=10_000_000, wall_timeout_s=5)
    fault = info.value
    assert "udf" in fault.instruction
    assert f"{fault.pc:#010x}" in str(fault) and "udf" in str(fault) and "undefined instruction" in str(fault)
    lo = board.config.memory.flash_base
    assert lo <= fault.pc < lo + 0x1000
    assert board.state == "faulted"


def test_fault_on_command_in_background_thread_is_kept(firmware) -> None:
    board = SimBoard(load_board("sim-m4"), persist=False)
    board.program(firmware[("sim-m4", "")])
    try:
        with serial.serial_for_url(board.serial_url, timeout=5) as port:
            board.start()
            assert port.readline() == b"ready\n"
            port.write(b"fault\n")
            deadline = time.monotonic() + 5
            while board.error is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert board.state == "faulted"
    finally:
        board.stop()
    assert isinstance(board.error, SimFault) and "udf" in str(board.error)


def test_hung_image_times_out_on_cycle_and_wall_budgets(firmware) -> None:
    board = SimBoard(load_board("sim-m4"), persist=False)
    board.program(firmware[("sim-m4", "BOOT_HANG")])
    with pytest.raises(SimTimeout, match="cycle budget of 5000000"):
        board.run(max_cycles=5_000_000, wall_timeout_s=30)
    with pytest.raises(SimTimeout, match=r"wall-clock budget of 0\.3 s"):
        board.run(max_cycles=None, wall_timeout_s=0.3)


def test_waiting_for_input_parks_until_wall_budget(firmware) -> None:
    board = booted("sim-pico", firmware[("sim-pico", "")])
    with pytest.raises(SimTimeout, match="wall-clock"):
        board.run(max_cycles=None, wall_timeout_s=0.4)
    assert board.parked_wall_s >= 0.3  # parked (not spinning) while no host byte arrived


def test_sysresetreq_reboots(firmware) -> None:
    board = booted("sim-m4", firmware[("sim-m4", "")])
    board.uart.clear_output()
    out = command(board, "reset", b"ready\n")
    assert out == "ready\n"


def test_python_and_native_counters_agree(firmware) -> None:
    results = []
    for native in (True, False):
        board = booted("sim-pico", firmware[("sim-pico", "")], native=native)
        assert board.native is native  # gcc is present here, so the native hook must load
        command(board, "bench 4", b"result=")
        e = board.bus.edges()
        results.append((board.insns, e[-1].cycle - e[-2].cycle, command(board, "bench 2", b"result=")))
    assert results[0] == results[1]


def test_flash_persists_across_boards(firmware, tmp_path: Path) -> None:
    first = SimBoard(load_board("sim-pico"), state_dir=tmp_path)
    first.program(firmware[("sim-pico", "")])
    second = SimBoard(load_board("sim-pico"), state_dir=tmp_path)  # e.g. another process
    second.run(max_cycles=10_000_000, wall_timeout_s=5, until=lambda: b"ready\n" in second.uart.output())
    assert (tmp_path / "sim-pico" / "flash.bin").stat().st_size == load_board("sim-pico").memory.flash_size


def test_blank_and_misplaced_images_are_refused(firmware, tmp_path: Path) -> None:
    board = SimBoard(load_board("sim-pico"), state_dir=tmp_path)
    with pytest.raises(SimError, match="erased"):
        board.run(max_cycles=1000)
    # an M4 image linked at 0x0 does not fit the Pico's flash at 0x1000_0000
    with pytest.raises(SimImageError, match="outside flash 0x10000000"):
        board.program(firmware[("sim-m4", "")])


def test_faulted_board_recovers_on_reset_and_keeps_its_port(firmware) -> None:
    board = SimBoard(load_board("sim-m4"), persist=False)
    board.program(firmware[("sim-m4", "")])
    url = board.serial_url
    try:
        with serial.serial_for_url(url, timeout=5) as port:
            board.start()
            assert port.readline() == b"ready\n"
            port.write(b"fault\n")
            deadline = time.monotonic() + 5
            while board.state != "faulted" and time.monotonic() < deadline:
                time.sleep(0.01)
            board.reset()  # what a debugger reset does after a fault
            assert board.error is None
            assert port.readline() == b"ready\n"
        board.stop()
        board.start()
        assert board.serial_url == url  # a restarted board is reachable at the same URL
        with serial.serial_for_url(url, timeout=5) as port:
            port.write(b"ping\n")
            assert port.readline() == b"pong\n"
    finally:
        board.stop()


@pytest.mark.parametrize(
    ("cmd", "reason", "address"),
    [("jump", "jump to unmapped address", 0x30000000), ("peek", "read from unmapped address", 0x30000010)],
)
def test_bad_jump_and_bad_read_are_faults(firmware, cmd: str, reason: str, address: int) -> None:
    board = booted("sim-pico", firmware[("sim-pico", "")])
    board.uart.inject(cmd.encode() + b"\n")
    with pytest.raises(SimFault) as info:
        board.run(max_cycles=10_000_000, wall_timeout_s=5)
    fault = info.value
    assert fault.reason == reason and fault.address == address
    assert fault.instruction.split()[0] in ({"blx", "bx"} if cmd == "jump" else {"ldr"})
    assert f"{reason} {address:#010x}" in str(fault)
