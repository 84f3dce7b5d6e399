"""Emulation speed of the simulated board: instructions per second of the Python block hook, the
native (C) block hook, and QEMU (mps2-an386, -icount shift=0) on the same ELF, side by side.

    .venv/bin/python benchmarks/sim_speed.py [--iterations N]

The workload is tests/sim_firmware's "bench N" command (a 64-tap MAC loop), timed from the
command to its reply, so boot and process start-up are excluded.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from sim_firmware.build import build_firmware  # noqa: E402

from harness.config.board import load_board  # noqa: E402
from harness.sim.board import SimBoard  # noqa: E402


def run_board(elf: Path, iterations: int, native: bool) -> tuple[int, float]:
    board = SimBoard(load_board("sim-m4"), persist=False, native=native)
    board.program(elf)
    board.run(max_cycles=10**7, wall_timeout_s=10, until=lambda: b"ready\n" in board.uart.output())
    i0 = board.insns
    board.uart.inject(f"bench {iterations}\n".encode())
    t0 = time.perf_counter()
    board.run(max_cycles=None, wall_timeout_s=600, until=lambda: b"result=" in board.uart.output())
    return board.insns - i0, time.perf_counter() - t0


def run_qemu(elf: Path, iterations: int) -> float | None:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            qemu,
            "-M",
            "mps2-an386",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            f"tcp:127.0.0.1:{port},server=on,wait=on",
            "-icount",
            "shift=0,align=off,sleep=off",
            "-kernel",
            str(elf),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with conn:
            buf = b""
            while b"ready\n" not in buf:
                buf += conn.recv(100)
            conn.sendall(f"bench {iterations}\n".encode())
            t0 = time.perf_counter()
            buf = b""
            while b"result=" not in buf or not buf.endswith(b"\n"):
                buf += conn.recv(100)
            return time.perf_counter() - t0
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=500_000, help="bench iterations (x ~390 instructions)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware(load_board("sim-m4"), Path(tmp))
        py_iters = max(1, args.iterations // 50)
        rows = []
        n, dt = run_board(elf, py_iters, native=False)
        rows.append(("unicorn + Python block hook", n, dt))
        n_native, dt = run_board(elf, args.iterations, native=True)
        rows.append(("unicorn + native block hook", n_native, dt))
        qdt = run_qemu(elf, args.iterations)
        if qdt is not None:
            rows.append(("qemu-system-arm -icount shift=0", n_native, qdt))
        print(f"{'backend':34} {'instructions':>14} {'wall s':>9} {'M instr/s':>10}")
        for name, n, dt in rows:
            print(f"{name:34} {n:14,d} {dt:9.3f} {n / dt / 1e6:10.1f}")
        if qdt is None:
            print("(qemu-system-arm not installed: QEMU row skipped)")


if __name__ == "__main__":
    main()
