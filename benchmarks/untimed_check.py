"""Output checks timed vs untimed on the emulated boards, side by side: the seconds per inference
of seed 002's LeNet (element-pruned at 95 %, dense shape, CSR weights in flash), uint8 and
float, with the full timing model and inside ``SimBoard.untimed()`` (flash data reads not
charged), and whether the outputs are the same bytes. Flash data reads are served by an mmio
callback (harness/sim/flashmap.py); with the memory hook used before, timed runs were 2.5-4.1x
slower than untimed ones and the float row on sim-nano33ble computed garbage (unicorn#2309).

    .venv/bin/python benchmarks/untimed_check.py [--inferences N] [--boards sim-pico,sim-nano33ble]

The campaign runs its on-device output check (200 quantized / 50 float inputs per
configuration in the demo) untimed; its measurements always run timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from harness.config import load_board
from harness.dut import DutLink
from harness.sim.calibrate import _prepare, model_on_board, paper_lenet


def seconds_per_inference(dut: DutLink, n: int) -> tuple[float, bytes]:
    dut.infer(1, timeout=1800)  # the first after a change of mode runs partly in the old one
    t0 = time.perf_counter()
    for _ in range(n):
        dut.infer(1, timeout=1800)
    return (time.perf_counter() - t0) / n, bytes(dut.results())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inferences", type=int, default=4)
    ap.add_argument("--boards", default="sim-pico,sim-nano33ble")
    args = ap.parse_args()
    print(f"{'board':<15} {'numeric':<8} {'timed s':>8} {'untimed s':>9} {'speed-up':>8}  same output")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.boards.split(","):
            cfg = load_board(name)
            for numeric in ("uint8", "float32"):
                graph = _prepare(paper_lenet((32, 64, 128), 0.95), numeric)
                with model_on_board(graph, cfg, work=Path(tmp) / f"{name}-{numeric}") as (board, dut):
                    timed, out_timed = seconds_per_inference(dut, args.inferences)
                    with board.untimed():
                        untimed, out_untimed = seconds_per_inference(dut, args.inferences)
                print(f"{name:<15} {numeric:<8} {timed:>8.3f} {untimed:>9.3f} {timed / untimed:>7.1f}x  "
                      f"{out_timed == out_untimed}")  # fmt: skip


if __name__ == "__main__":
    main()
