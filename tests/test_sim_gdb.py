"""Debugging a simulated board like a real one: the real `pyocd gdbserver` CLI talks to the
board through the `sim:` probe (served by the rig's pyOCD probe server, as a probe on a bench PC
would be) and gdb-multiarch drives it in batch mode over the real bench firmware built with
arm-none-eabi-gcc: reset-and-halt at the reset vector, a breakpoint at the firmware's main loop,
single steps, variable and FPU register reads, a breakpoint inside the inference reached while
the host runs the benchmark protocol over the UART, and a clean detach after which the
inference completes with the right result."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from firmware_fixtures.fixture_model import INPUT_BYTES, fixture_output, fixture_sources

from harness.build import build_firmware
from harness.config import load_board
from harness.dut.link import DutLink
from harness.sim import registry
from harness.sim.rig import SimRig

GDB = shutil.which("gdb-multiarch") or shutil.which("arm-none-eabi-gdb")
if GDB is None and os.environ.get("CI") == "true":
    raise RuntimeError("gdb-multiarch is missing: scripts/setup.sh installs it")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(GDB is None, reason="needs gdb-multiarch (scripts/setup.sh installs it)"),
    pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc"),
]


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_SIM_STATE", str(tmp_path / "state"))
    yield tmp_path / "state"
    for name in registry.registered():
        registry.get(name).stop()
        registry.unregister(name)


@pytest.fixture(scope="module")
def bench_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fw")
    result = build_firmware(fixture_sources(), load_board("sim-m4"), out / "sim-m4", cache_dir=out / "cache")
    assert result.elf is not None
    return result.elf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _symbols(elf: Path) -> dict[str, int]:
    with elf.open("rb") as fh:
        symtab = ELFFile(fh).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}


def test_gdb_breaks_steps_reads_and_stops_inside_the_inference(bench_elf: Path) -> None:
    syms = _symbols(bench_elf)
    with SimRig(["sim-m4"], analyzer=False, pyocd_servers=True) as rig:
        dut = rig["sim-m4"]
        dut.board.program(bench_elf)
        vector_sp = int.from_bytes(dut.board.flash.read(dut.board_config.program_base, 4), "little")
        gdb_port, telnet_port = _free_port(), _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "pyocd", "gdbserver", "-u", dut.pyocd_remote, "-t", "sim_m4",
             "-p", str(gdb_port), "-T", str(telnet_port), "-O", "frequency=1000000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy(),
        )  # fmt: skip
        host: dict[str, object] = {}
        server_log: list[str] = []
        data = bytes((7 * i + 3) & 0xFF for i in range(INPUT_BYTES))

        def run_benchmark() -> None:
            """The host side: once gdb has stopped the rebooted core at the first breakpoint and
            let it go, syncs with the firmware's protocol, loads an input and asks for one
            inference (which runs into the second breakpoint)."""
            try:
                board, entry = dut.board, syms["bench_run"] & ~1
                deadline = time.monotonic() + 120
                while not (board.state == "halted" and entry <= board.pc < entry + 16):
                    assert time.monotonic() < deadline, "gdb never stopped at bench_run"
                    time.sleep(0.01)
                while board.state != "running":
                    assert time.monotonic() < deadline, "gdb never resumed from bench_run"
                    time.sleep(0.01)
                time.sleep(0.5)  # the boot banner is out: earlier boots' banners are stale
                with DutLink(dut.serial_url, timeout=60, per_inference_timeout=60) as link:
                    link.resync()
                    link.load_input(data)
                    host["infer"] = link.infer(1, timeout=90)
                    host["results"] = link.results()
            except (Exception, AssertionError) as exc:  # reported by the assertions below
                host["error"] = exc

        try:
            _wait_for_listening(server, server_log)
            dut.board.uart.clear_output()
            worker = threading.Thread(target=run_benchmark, daemon=True)
            script = [
                "set pagination off",
                "set confirm off",
                "set remotetimeout 30",
                f"target remote 127.0.0.1:{gdb_port}",
                "monitor reset halt",
                "maintenance flush register-cache",  # a monitor command does not tell gdb
                'printf "RESET pc=%#x sp=%#x\\n", $pc, $sp',
                "break bench_run",
                "continue",
                'printf "AT pc=%#x\\n", $pc',
                "stepi",
                "stepi",
                'printf "STEPPED pc=%#x\\n", $pc',
                "print fixture_rounding",
                "set var fixture_rounding = 128",
                "set $s5 = 2.5",
                "print $s5",
                "break model_run",
                "continue",
                "bt 2",
                "print/x $pc",
                "delete",
                "detach",
            ]
            worker.start()
            gdb = subprocess.Popen(
                [GDB, "-nx", "--batch", *(a for line in script for a in ("-ex", line)), str(bench_elf)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            try:
                out = gdb.communicate(timeout=120)[0]
            except subprocess.TimeoutExpired:
                gdb.kill()
                out = gdb.communicate()[0]
                raise AssertionError(f"gdb did not finish:\n{out}\nhost: {host}\n" + "".join(server_log)) from None
            worker.join(timeout=120)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        assert gdb.returncode == 0, out + "".join(server_log)

        reset = re.search(r"RESET pc=(0x[0-9a-f]+) sp=(0x[0-9a-f]+)", out)
        assert reset, out
        assert int(reset[1], 16) == syms["Reset_Handler"] & ~1, out + "".join(server_log)  # the vector table PC
        assert int(reset[2], 16) == vector_sp  # ... and SP
        assert re.search(r"Breakpoint 1, (0x[0-9a-f]+ in )?bench_run", out), out
        at = int(re.search(r"AT pc=(0x[0-9a-f]+)", out)[1], 16)
        stepped = int(re.search(r"STEPPED pc=(0x[0-9a-f]+)", out)[1], 16)
        assert at == syms["bench_run"] & ~1
        assert at < stepped <= at + 8  # two instructions of 2 or 4 bytes
        assert re.search(r"^\$1 = 128$", out, re.M), out  # an initialised global, read from RAM
        assert re.search(r"^\$2 = 2\.5$", out, re.M), out  # an FPU register written and read back
        assert re.search(r"Breakpoint 2, (0x[0-9a-f]+ in )?model_run", out), out
        assert re.search(r"#1 .* in cmd_infer", out), out  # called from the protocol's infer command
        assert f"$3 = {syms['model_run'] & ~1:#x}" in out, out

        assert "error" not in host, host.get("error")
        assert len(host["infer"].cycles) == 1  # type: ignore[attr-defined]
        assert host["results"] == fixture_output(data)  # debugging did not disturb the inference


def _wait_for_listening(proc: subprocess.Popen[str], log: list[str], timeout_s: float = 60) -> None:
    """Wait for the server's 'listening' line (a probe connection would end a non-persistent
    gdbserver); a thread keeps draining its output so the pipe never fills."""
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if "listening on port" in line.lower():
                ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(timeout_s):
        raise AssertionError("pyocd gdbserver did not start listening:\n" + "".join(log))
