"""Emulation speed of the simulated board on an integer and a soft-float (call-heavy) workload:
instructions per second of the Python block hook, the native (C) block hook, and QEMU
(mps2-an386, -icount shift=0) on the same ELF, side by side.

    .venv/bin/python benchmarks/sim_speed.py [--iterations N]

The image is tests/sim_firmware built for sim-m4 with -mfloat-abi=soft, so "fbench N" (a 64-tap
float MAC loop) calls libgcc's __aeabi_fmul / __aeabi_fadd / __aeabi_i2f for every operation,
while "bench N" is the integer MAC loop. The "nano33ble" row runs the same image with
sim-nano33ble's memory system (flash cache lookups per block; flash pages without code read
through an mmio callback, harness/sim/flashmap.py). Each is timed from the command to its reply, so boot
and process start-up are excluded. The target (issue 15): >= 100 M simulated instructions/s on
the soft-float workload with the native hook.
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

from harness.config.board import BoardConfig, load_board  # noqa: E402
from harness.sim.board import SimBoard  # noqa: E402

SOFT_FLOAT_M4 = ["-mcpu=cortex-m4", "-mfloat-abi=soft"]
WORKLOADS = (("integer MAC loop", "bench"), ("soft-float MAC loop", "fbench"))


def sim_m4(memory_of: str | None = None) -> BoardConfig:
    """sim-m4, optionally with another M4 board's [sim] (its flash cache and flash data-read model)."""
    cfg = load_board("sim-m4")
    return cfg if memory_of is None else cfg.model_copy(update={"sim": load_board(memory_of).sim})


def run_board(
    elf: Path, command: str, iterations: int, native: bool, memory_of: str | None = None
) -> tuple[int, float]:
    board = SimBoard(sim_m4(memory_of), persist=False, native=native)
    board.program(elf)
    board.run(max_cycles=10**7, wall_timeout_s=10, until=lambda: b"ready\n" in board.uart.output())
    i0 = board.insns
    board.uart.inject(f"{command} {iterations}\n".encode())
    t0 = time.perf_counter()
    board.run(max_cycles=None, wall_timeout_s=600, until=lambda: b"result=" in board.uart.output())
    return board.insns - i0, time.perf_counter() - t0


def run_qemu(elf: Path, command: str, iterations: int) -> float | None:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [qemu, "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
         f"tcp:127.0.0.1:{port},server=on,wait=on", "-icount", "shift=0,align=off,sleep=off", "-kernel", str(elf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
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
            conn.sendall(f"{command} {iterations}\n".encode())
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
    ap.add_argument("--iterations", type=int, default=200_000, help="iterations per workload (x 64 MACs)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware(load_board("sim-m4"), Path(tmp), cpu_flags=SOFT_FLOAT_M4)
        print(f"{'workload':22} {'backend':34} {'instructions':>14} {'wall s':>8} {'M instr/s':>10} {'vs QEMU':>8}")
        for label, command in WORKLOADS:
            rows = []
            n, dt = run_board(elf, command, max(1, args.iterations // 50), native=False)
            rows.append(("unicorn + Python block hook", n, dt))
            n_native, dt = run_board(elf, command, args.iterations, native=True)
            rows.append(("unicorn + native block hook", n_native, dt))
            n, dt = run_board(elf, command, args.iterations, native=True, memory_of="sim-nano33ble")
            rows.append(("native + nano33ble cache/flash reads", n, dt))
            qdt = run_qemu(elf, command, args.iterations)
            if qdt is not None:
                rows.append(("qemu-system-arm -icount shift=0", n_native, qdt))
            qemu_rate = n_native / qdt if qdt else None
            for name, n, dt in rows:
                rate = n / dt
                ratio = f"{rate / qemu_rate:8.2f}" if qemu_rate else f"{'-':>8}"
                print(f"{label:22} {name:34} {n:14,d} {dt:8.3f} {rate / 1e6:10.1f} {ratio}")
        if shutil.which("qemu-system-arm") is None:
            print("(qemu-system-arm not installed: QEMU rows skipped)")


if __name__ == "__main__":
    main()
