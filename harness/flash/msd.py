"""Mass-storage backend (DAPLink drag-and-drop): copy a .bin onto the interface's USB drive, sync,
then wait until the interface has taken it (the file disappears, typically while the drive
re-enumerates) or reports FAIL.TXT. It cannot halt or verify by read-back."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.config.board import BoardConfig
from harness.flash.base import Flasher, ProbeInfo
from harness.flash.errors import FlashError, FlashFailedError, FlashTimeoutError, NoProbeError

MOUNT_ROOTS = ("/media", "/run/media", "/mnt", "/Volumes")


def image_to_bin(firmware: Path, base: int) -> bytes:
    """Flatten an ELF/HEX/BIN into the contiguous binary a DAPLink expects at ``base``."""
    from harness.flash.image import load_segments

    segments = sorted(load_segments(firmware, base))
    if not segments:
        raise ValueError(f"{firmware}: no loadable data")
    if segments[0][0] < base:
        raise ValueError(f"{firmware}: data at {segments[0][0]:#010x} is below the program base {base:#010x}")
    end = max(a + len(d) for a, d in segments)
    image = bytearray(b"\xff" * (end - base))
    for addr, data in segments:
        image[addr - base : addr - base + len(data)] = data
    return bytes(image)


def daplink_unique_id(drive: Path) -> str | None:
    details = drive / "DETAILS.TXT"
    try:
        for line in details.read_text(errors="replace").splitlines():
            if line.lower().startswith("unique id:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


class MassStorageFlasher(Flasher):
    def __init__(
        self,
        board: BoardConfig,
        drive: str | Path | None = None,
        probe: str | None = None,
        timeout_s: float = 60.0,
        poll_s: float = 0.1,
    ):
        self.board, self.probe = board, probe
        self.drive = Path(drive) if drive is not None else None
        self.timeout_s, self.poll_s = timeout_s, poll_s

    def _error(self, cls: type[FlashError], cause: str) -> FlashError:
        return cls(self.board.name, self.probe or (str(self.drive) if self.drive else None), cause)

    def list_probes(self) -> list[ProbeInfo]:
        found = []
        candidates = (
            [self.drive]
            if self.drive
            else [
                p
                for root in MOUNT_ROOTS
                if Path(root).is_dir()
                for p in [*Path(root).glob("*/"), *Path(root).glob("*/*/")]
            ]
        )
        for d in candidates:
            uid = daplink_unique_id(d) if d else None
            if d and uid:
                found.append(ProbeInfo(uid, f"DAPLink drive {d}", "Arm DAPLink"))
        return found

    def _resolve_drive(self) -> Path:
        if self.drive is not None:
            if not self.drive.is_dir():
                raise self._error(NoProbeError, f"DAPLink drive {self.drive} is not mounted")
            return self.drive
        for info in self.list_probes():
            if self.probe is None or info.unique_id == self.probe:
                return Path(info.description.removeprefix("DAPLink drive "))
        raise self._error(
            NoProbeError, "no DAPLink drive found" + (f" with unique id {self.probe}" if self.probe else "")
        )

    def program(self, firmware: str | Path, verify: bool = True) -> None:
        path = Path(firmware)
        if not path.is_file():
            raise self._error(FlashFailedError, f"firmware file not found: {path}")
        drive = self._resolve_drive()
        try:
            image = image_to_bin(path, self.board.program_base)
        except ValueError as exc:
            raise self._error(FlashFailedError, str(exc)) from None
        target = drive / (path.stem + ".bin")
        before = self._fail_stamp(drive)
        try:
            with open(target, "wb") as fh:
                fh.write(image)
                fh.flush()
                os.fsync(fh.fileno())
            os.sync()
        except OSError as exc:
            raise self._error(FlashFailedError, f"copy to {drive} failed: {exc}") from None
        self._wait_taken(drive, target, before)

    @staticmethod
    def _fail_stamp(drive: Path) -> tuple[int, str] | None:
        fail = drive / "FAIL.TXT"
        try:
            return (fail.stat().st_mtime_ns, fail.read_text(errors="replace"))
        except OSError:
            return None

    def _wait_taken(self, drive: Path, target: Path, fail_before: tuple[int, str] | None) -> None:
        """Poll until the image file is consumed; a new or changed FAIL.TXT is a failure."""
        deadline = time.monotonic() + self.timeout_s
        fail = drive / "FAIL.TXT"
        while time.monotonic() < deadline:
            if drive.is_dir():
                stamp = self._fail_stamp(drive)
                if stamp is not None and stamp != fail_before:
                    raise self._error(
                        FlashFailedError, f"interface reported: {fail.read_text(errors='replace').strip()}"
                    )
                if not target.exists():
                    return
            time.sleep(self.poll_s)
        raise self._error(
            FlashTimeoutError,
            f"{target.name} was not taken by the interface on {drive} "
            f"within {self.timeout_s:g} s (no re-enumeration)",
        )

    def _unsupported(self, what: str) -> None:
        raise self._error(
            FlashError, f"{what} is not possible through a mass-storage drive; use the pyOCD backend"
        )

    def reset(self) -> None:
        self._unsupported("reset")

    def run(self) -> None:
        self._unsupported("run")

    def halt(self) -> None:
        self._unsupported("halt")
