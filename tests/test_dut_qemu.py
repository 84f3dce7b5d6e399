"""The real sim-m4 firmware speaks the protocol: run it on QEMU mps2-an386 (same UART/LED map as
the simulated boards) and drive it with DutLink over a TCP serial port."""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from firmware_fixtures.fixture_model import INPUT_BYTES, MODEL_HASH, fixture_output, fixture_sources
from firmware_fixtures.qemu import HAVE_QEMU, led_writes, qemu_board

from harness.build import build_firmware
from harness.config import load_board
from harness.dut import DutLink, DutProtocolError

pytestmark = pytest.mark.skipif(
    not HAVE_QEMU or not shutil.which("arm-none-eabi-gcc"),
    reason="needs qemu-system-arm and arm-none-eabi-gcc",
)


@pytest.fixture(scope="module")
def sim_m4_build(tmp_path_factory: pytest.TempPathFactory):
    return build_firmware(fixture_sources(), load_board("sim-m4"), tmp_path_factory.mktemp("fw-m4"))


@pytest.fixture()
def qemu(sim_m4_build, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """QEMU running the image; yields (socket URL, LED trace log)."""
    trace = tmp_path / "fpgaio.log"
    with qemu_board(sim_m4_build.elf, trace) as url:
        yield url, trace


def test_firmware_speaks_protocol_on_qemu(qemu, sim_m4_build) -> None:
    url, trace = qemu
    inp = bytes((i * 7 + 3) & 0xFF for i in range(INPUT_BYTES))
    expected = fixture_output(inp)
    with DutLink(url, timeout=5.0) as dut:
        dut.resync()
        info = dut.identify()
        assert info.board == "sim-m4"
        assert info.model_hash == MODEL_HASH
        assert info.build_id == sim_m4_build.build_id
        assert (info.input_bytes, info.output_bytes, info.output_count) == (784, 10, 10)
        assert info.counter == "dwt" and info.counter_hz == 100_000_000
        dut.load_input(inp)
        writes_before = len(led_writes(trace))
        res = dut.infer(3, warmup=1, gap_us=200)
        assert len(res.cycles) == 3 and all(isinstance(c, int) and c >= 0 for c in res.cycles)
        assert res.checksums == [zlib.crc32(expected)] * 3
        assert res.deterministic and not res.wrapped
        assert dut.results() == expected
        # The benchmark pin went high then low once per measured inference, not for the warm-up.
        led = led_writes(trace)[writes_before:]
        assert led == [1, 0] * 3


def test_firmware_errors_and_resync_on_qemu(qemu) -> None:
    url, _ = qemu
    with DutLink(url, timeout=5.0) as dut:
        dut.resync()
        with pytest.raises(DutProtocolError, match="e-infer-no-input"):
            dut.command("infer 1 0 0")
        with pytest.raises(DutProtocolError, match="e-db-load-size"):
            dut.command("db load 3")
        with pytest.raises(DutProtocolError, match="e-unknown-command"):
            dut.command("bogus")
        dut._ser.write(b"garbage-without-terminator")  # half a command left on the wire
        dut.resync()
        assert dut.identify().board == "sim-m4"
        # A second input replaces the first; results follow the new input.
        inp = bytes(range(256)) * 3 + bytes(16)
        dut.load_input(inp)
        res = dut.infer(1, warmup=0, gap_us=0)
        assert res.checksum == zlib.crc32(fixture_output(inp))
