"""Host<->firmware UART cost on a simulated board: DutLink.load_input / identify / infer(1) /
results round trips with the UART registers in C (harness/sim/native/uartregs.c, with the C
block hook), with the C block hook but the registers in Python (every access a Python mmio
callback: the state before issue 16), and on the pure-Python path (PyCounter), side by side.

    .venv/bin/python benchmarks/uart_roundtrip.py [--repeat N] [--elf firmware.elf --input-bytes B]

Default image: the fixture model (tests/firmware_fixtures, a 784-byte uint8 input) built for
sim-nano33ble. ``--elf`` times another benchmark image instead (e.g. a lenet float32 build from
a campaign, 3,136-byte input). Each figure is the median wall time of ``--repeat`` calls; the
inference itself is in the infer(1) column for scale (the Python block hook also runs the
model ~50x slower, so the py-uart column isolates what the C registers save).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_sources  # noqa: E402

from harness.build import build_firmware  # noqa: E402
from harness.config import load_board  # noqa: E402
from harness.dut import DutLink  # noqa: E402
from harness.sim.board import SimBoard  # noqa: E402

BOARD = "sim-nano33ble"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


# column: (C block hook, C UART registers)
PATHS = {"c-uart": (True, True), "py-uart": (True, False), "python": (False, False)}


def measure(elf: Path, input_bytes: int, path: str, repeat: int) -> dict[str, float]:
    native, native_uart = PATHS[path]
    board = SimBoard(load_board(BOARD), persist=False, native=native, native_uart=native_uart)
    assert (board.uart_regs is not None) is native_uart
    board.program(elf)
    board.start()
    data = bytes((i * 29 + 7) & 0xFF for i in range(input_bytes))
    try:
        with DutLink(board.serial_url, timeout=60, per_inference_timeout=60) as dut:
            dut.resync()
            dut.identify()
            return {
                "identify": median_ms(dut.identify, repeat),
                "load_input": median_ms(lambda: dut.load_input(data), repeat),
                "infer(1)": median_ms(lambda: dut.infer(1), max(1, repeat // 4)),
                "results": median_ms(dut.results, repeat),
            }
    finally:
        board.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=8, help="calls per figure (median)")
    ap.add_argument("--elf", type=Path, help="benchmark image to time instead of the fixture model")
    ap.add_argument("--input-bytes", type=int, default=INPUT_BYTES, help="the image's input size")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elf = args.elf or build_firmware(fixture_sources(), load_board(BOARD), Path(tmp) / "fw").elf
        cols = {path: measure(elf, args.input_bytes, path, args.repeat) for path in PATHS}
    print(f"{BOARD}, {elf.name}, input {args.input_bytes} bytes, median of {args.repeat} (ms):")
    print(f"{'call':<12}" + "".join(f"{c:>10}" for c in PATHS) + f"{'py-uart/c-uart':>16}{'python/c-uart':>15}")
    for call, fast in cols["c-uart"].items():
        row = "".join(f"{cols[c][call]:>10.2f}" for c in PATHS)
        print(f"{call:<12}{row}{cols['py-uart'][call] / fast:>15.1f}x{cols['python'][call] / fast:>14.1f}x")


if __name__ == "__main__":
    main()
