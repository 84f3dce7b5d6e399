"""Mass-storage (DAPLink drive) flasher against a temporary folder standing in for the drive; a
helper thread plays the interface firmware (consumes the file, or writes FAIL.TXT)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sim_firmware.build import build_firmware, have_toolchain

from harness.config.board import load_board
from harness.flash import FlashError, FlashFailedError, FlashTimeoutError, NoProbeError, flasher_for
from harness.flash.msd import MassStorageFlasher, image_to_bin

pytestmark = pytest.mark.skipif(not have_toolchain(), reason="needs arm-none-eabi-gcc")


@pytest.fixture(scope="module")
def elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(load_board("sim-nano33ble"), tmp_path_factory.mktemp("fw"))


def daplink(drive: Path, fail: bool = False) -> tuple[threading.Thread, dict[str, bytes]]:
    """Take the first .bin copied onto ``drive``: remove it (success) or answer FAIL.TXT."""
    got: dict[str, bytes] = {}

    def interface() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            bins = list(drive.glob("*.bin"))
            if bins:
                time.sleep(0.05)
                got[bins[0].name] = bins[0].read_bytes()
                if fail:
                    (drive / "FAIL.TXT").write_text("The hex file cannot be decoded.\n")
                else:
                    bins[0].unlink()
                return
            time.sleep(0.01)

    t = threading.Thread(target=interface, daemon=True)
    t.start()
    return t, got


def test_image_to_bin_matches_objcopy(elf: Path) -> None:
    cfg = load_board("sim-nano33ble")
    assert cfg.program_base == 0x10000
    assert image_to_bin(elf, cfg.program_base) == elf.with_suffix(".bin").read_bytes()
    assert image_to_bin(elf.with_suffix(".hex"), cfg.program_base) == elf.with_suffix(".bin").read_bytes()


def test_copy_is_consumed(elf: Path, tmp_path: Path) -> None:
    drive = tmp_path / "DAPLINK"
    drive.mkdir()
    (drive / "DETAILS.TXT").write_text("# DAPLink Firmware\nUnique ID: 0240000032044e45\n")
    flasher = flasher_for(load_board("sim-nano33ble"), drive=drive, timeout_s=5)
    assert isinstance(flasher, MassStorageFlasher)
    assert [p.unique_id for p in flasher.list_probes()] == ["0240000032044e45"]
    t, got = daplink(drive)
    flasher.program(elf)
    t.join()
    assert got == {"fw-sim-nano33ble.bin": elf.with_suffix(".bin").read_bytes()}


def test_fail_txt_is_a_flash_failure(elf: Path, tmp_path: Path) -> None:
    drive = tmp_path / "DAPLINK"
    drive.mkdir()
    t, _ = daplink(drive, fail=True)
    with pytest.raises(FlashFailedError, match="cannot be decoded") as info:
        MassStorageFlasher(load_board("sim-nano33ble"), drive=drive, timeout_s=5).program(elf)
    t.join()
    assert "sim-nano33ble" in str(info.value) and str(drive) in str(info.value)


def test_drive_that_never_takes_the_file_times_out(elf: Path, tmp_path: Path) -> None:
    with pytest.raises(FlashTimeoutError, match="no re-enumeration"):
        MassStorageFlasher(load_board("sim-nano33ble"), drive=tmp_path, timeout_s=0.3).program(elf)


def test_missing_drive_and_unsupported_control(elf: Path, tmp_path: Path) -> None:
    flasher = MassStorageFlasher(load_board("sim-nano33ble"), drive=tmp_path / "absent", timeout_s=1)
    with pytest.raises(NoProbeError, match="not mounted"):
        flasher.program(elf)
    with pytest.raises(FlashError, match="not possible through a mass-storage drive"):
        flasher.halt()
