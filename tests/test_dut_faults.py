"""Stricter, faster failure detection against the real firmware on the emulated board: a fault
ends the command at once with its reason (DutFault, not a timeout), and a reply corrupted on the
wire (input-bytes 784 -> 785 style) fails its checksum instead of being believed."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_sources

from harness.build import build_firmware
from harness.config import load_board
from harness.dut import DutChecksumError, DutFault, DutLink
from harness.sim.board import SimBoard

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc") and os.environ.get("CI") != "true",
                                reason="needs arm-none-eabi-gcc")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def board_with(tmp_path: Path) -> Iterator:
    boards: list[SimBoard] = []

    def start(cflags: tuple[str, ...] = ()) -> SimBoard:
        fw = build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path / f"fw{len(boards)}",
                            cache_dir=tmp_path / "cache", extra_cflags=cflags)
        board = SimBoard(load_board("sim-m4"), persist=False)
        board.program(fw.elf)
        board.start()
        boards.append(board)
        return board

    yield start
    for b in boards:
        b.stop()


def test_fault_during_inference_ends_the_command_at_once(board_with) -> None:
    board = board_with(("-DBENCH_INJECT_FAULT=1",))
    fault = lambda: str(board.error) if board.error is not None else None  # noqa: E731
    # deadlines far beyond the test's patience: only the fault can end the wait
    with DutLink(board.serial_url, timeout=600, per_inference_timeout=600, fault_check=fault) as dut:
        dut.resync()
        dut.load_input(bytes(INPUT_BYTES))
        with pytest.raises(DutFault) as exc:
            dut.infer(1)
    msg = str(exc.value)
    assert "the board faulted" in msg and "udf" in msg and "infer 1 0 0%" in msg
    assert board.state == "faulted"


class CorruptingProxy:
    """TCP proxy between the host and the board's UART that rewrites the first ``count``
    identify replies' input-bytes digits (the corruption the issue saw on a real wire)."""

    def __init__(self, target: str, count: int):
        host, port = target.removeprefix("socket://").rsplit(":", 1)
        self.up = socket.create_connection((host, int(port)))
        self.srv = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self.srv.getsockname()[1]}"
        self.left = count
        self.corrupted = 0
        self.flip = str((INPUT_BYTES + 1) % 10).encode()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        down, _ = self.srv.accept()
        threading.Thread(target=self._pump, args=(down, self.up, False), daemon=True).start()
        self._pump(self.up, down, True)

    def _pump(self, src: socket.socket, dst: socket.socket, corrupt: bool) -> None:
        line = f"m-input-bytes={INPUT_BYTES}\r\n".encode()
        pending = b""
        while True:
            try:
                data = src.recv(4096)
            except OSError:
                return
            if not data:
                return
            if not corrupt:
                dst.sendall(data)
                continue
            pending += data  # forward whole lines only, so a line split across reads is still seen
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                raw += b"\n"
                if raw == line and self.left > 0:
                    self.corrupted += 1
                    self.left -= 1
                    raw = raw[:-3] + self.flip + b"\r\n"
                dst.sendall(raw)

    def close(self) -> None:
        for s in (self.up, self.srv):
            s.close()


@pytest.mark.parametrize("corrupted", [1, 100])
def test_identify_corrupted_between_firmware_and_host(board_with, corrupted: int) -> None:
    board = board_with()
    proxy = CorruptingProxy(board.serial_url, corrupted)
    try:
        with DutLink(proxy.url, timeout=10) as dut:
            dut.resync()
            if corrupted == 1:  # once: the checksum fails, the link resyncs and asks again
                assert dut.identify().input_bytes == INPUT_BYTES
            else:
                with pytest.raises(DutChecksumError) as exc:
                    dut.identify()
                assert f"m-input-bytes={INPUT_BYTES + 1}" in str(exc.value) or "corrupted" in str(exc.value)
        assert proxy.corrupted == (1 if corrupted == 1 else 2)  # the first reply and the retry's
    finally:
        proxy.close()


@pytest.mark.slow
def test_campaign_records_the_fault_not_a_timeout(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "HARNESS_FAULT_INJECT": "fault:ll/s50/*", "HARNESS_SIM_STATE": str(tmp_path / "state"),
           "COLUMNS": "300"}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / "tests" / "data" / "tiny-campaign.toml"),
                           "--run-dir", str(run_dir), "--no-report"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    with sqlite3.connect(run_dir / "results.sqlite") as con:
        status = dict(con.execute("SELECT config_id, status FROM configurations").fetchall())
        reason = con.execute("SELECT failure_reason FROM configurations WHERE config_id = 'll/s50/uint8/sim-m4'"
                             ).fetchone()[0]
    assert status["ll/none/uint8/sim-m4"] == "measured" and status["ll/s50/uint8/sim-m4"] == "failed"
    assert reason.startswith("DutFault") and "udf" in reason and "Timeout" not in reason, reason
