"""Run a bare-metal sim-board image on QEMU mps2-an386 (same UART/LED map) with its UART on a
local TCP port, for protocol tests with DutLink."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HAVE_QEMU = shutil.which("qemu-system-arm") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def qemu_board(elf: Path, trace: Path | None = None) -> Iterator[str]:
    """Yield ``socket://127.0.0.1:PORT`` for the running image; LED writes go to ``trace``."""
    port = free_port()
    cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none",
           "-serial", f"tcp:127.0.0.1:{port},server=on,wait=off", "-icount", "shift=0",
           "-kernel", str(elf)]  # fmt: skip
    if trace is not None:
        cmd += ["-d", "trace:mps2_fpgaio_write", "-D", str(trace)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"QEMU did not open its serial port: {err}") from None
                time.sleep(0.05)
        yield f"socket://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def led_writes(trace: Path) -> list[int]:
    """Values written to the FPGAIO LED register, in order."""
    lines = trace.read_text().splitlines() if trace.exists() else []
    return [int(ln.rsplit("data ", 1)[1].split()[0], 16) for ln in lines if "mps2_fpgaio_write" in ln and "offset 0x0 " in ln]
