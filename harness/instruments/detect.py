"""`harness rig detect`: what is plugged in, from the libraries that know: pyOCD's probe list
(unique id, vendor, board), the Mbed tools' device detection (`mbed-tools detect --format json`:
mount point, serial port, Mbed target) and pyserial's port list (VID/PID, USB serial number),
matched to one another, and a rig file skeleton built from them.

Matching: a CMSIS-DAP / DAPLink / Nu-Link2 / Debug Probe is one USB device whose probe unique id
is its USB serial number, which its virtual COM port reports too; Mbed's detection names the
serial port of each board directly. Simulated probes (`sim:` ids) are listed but never assigned
to a real board."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import typer

from harness.config.board import BoardConfig, list_boards, load_board

# USB vendor ids of the probes and boards the harness knows (labels only; matching is by serial).
USB_VENDORS = {0x0D28: "Arm (DAPLink)", 0x0416: "Nuvoton (Nu-Link)", 0x2E8A: "Raspberry Pi", 0x1366: "SEGGER",
               0x0483: "STMicroelectronics", 0x2341: "Arduino", 0x1915: "Nordic Semiconductor",
               0x0403: "FTDI (USB-UART)", 0x10C4: "Silicon Labs (USB-UART)", 0x1A86: "WCH (USB-UART)"}  # fmt: skip
NO_MBED_DEVICES = "No connected Mbed devices found."


@dataclass(frozen=True)
class ProbeInfo:
    unique_id: str
    vendor: str
    product: str
    board_name: str | None = None  # from the probe's board id (DAPLink / Nu-Link2 boards)
    target: str | None = None  # pyOCD target type of that board

    @property
    def simulated(self) -> bool:
        return self.unique_id.startswith("sim:")


@dataclass(frozen=True)
class MbedDevice:
    serial_number: str
    serial_port: str | None
    mount_points: list[str]
    board_name: str | None
    target: str | None  # Mbed board_type, e.g. NUMAKER_PFM_M487
    build_targets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PortInfo:
    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    description: str
    manufacturer: str | None = None
    probe_uid: str | None = None  # the probe this port belongs to (same USB serial number)

    @property
    def usb_id(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else "-"

    @property
    def vendor(self) -> str:
        return USB_VENDORS.get(self.vid or -1, "")


@dataclass
class Detected:
    probes: list[ProbeInfo]
    mbed: list[MbedDevice]
    ports: list[PortInfo]
    notes: list[str] = field(default_factory=list)  # a source that could not be asked, and how to fix it

    def to_json(self) -> dict[str, Any]:
        return {"probes": [{**asdict(p), "simulated": p.simulated} for p in self.probes],
                "mbed_devices": [asdict(m) for m in self.mbed],
                "serial_ports": [{**asdict(p), "usb_id": p.usb_id} for p in self.ports], "notes": self.notes}  # fmt: skip


# -- the three sources ---------------------------------------------------------------------------
def probe_info(probe: Any) -> ProbeInfo:
    """From a pyOCD DebugProbe (unique_id, vendor_name, product_name, associated_board_info)."""
    board = probe.associated_board_info
    return ProbeInfo(unique_id=str(probe.unique_id), vendor=str(probe.vendor_name or ""),
                     product=str(probe.product_name or ""), board_name=board.name if board else None,
                     target=board.target if board else None)  # fmt: skip


def list_probes() -> list[ProbeInfo]:
    from pyocd.core.helpers import ConnectHelper

    probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    return [probe_info(p) for p in probes]


def parse_mbed_detect(text: str) -> list[MbedDevice]:
    """Output of `mbed-tools detect --format json` (a JSON list, or a sentence when empty)."""
    text = text.strip()
    if not text or text.startswith(NO_MBED_DEVICES):
        return []
    out = []
    for d in json.loads(text):
        board = d.get("mbed_board") or {}
        out.append(MbedDevice(serial_number=str(d.get("serial_number", "")), serial_port=d.get("serial_port"),
                              mount_points=[str(m) for m in d.get("mount_points", [])],
                              board_name=board.get("board_name"), target=board.get("board_type"),
                              build_targets=list(board.get("build_targets", []))))  # fmt: skip
    return out


def mbed_tools_command() -> str | None:
    """`mbed-tools` beside this interpreter, on $PATH, or in a venv harness.build made."""
    from harness.build.mbed_tools import tools_root

    here = Path(sys.executable).parent / "mbed-tools"
    if here.is_file():
        return str(here)
    found = shutil.which("mbed-tools")
    if found:
        return found
    venvs = sorted(tools_root().glob("*/venv/bin/mbed-tools"))
    return str(venvs[-1]) if venvs else None


def list_mbed_devices(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> list[MbedDevice]:
    cmd = mbed_tools_command()
    if cmd is None:
        raise FileNotFoundError("mbed-tools not installed")
    env = {**os.environ, "MBED_DATABASE_MODE": "OFFLINE"}  # never look boards up online
    proc = run([cmd, "detect", "--format", "json"], capture_output=True, text=True, timeout=60, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"`mbed-tools detect` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:200]}")
    return parse_mbed_detect(proc.stdout)


def port_info(port: Any) -> PortInfo:
    """From a pyserial ListPortInfo."""
    return PortInfo(device=str(port.device), vid=port.vid, pid=port.pid, serial_number=port.serial_number,
                    description=str(port.description or ""), manufacturer=port.manufacturer)  # fmt: skip


def list_ports() -> list[PortInfo]:
    from serial.tools import list_ports as lp

    return [port_info(p) for p in lp.comports()]


# -- matching and the skeleton -------------------------------------------------------------------
def match_ports(ports: Iterable[PortInfo], probes: Iterable[ProbeInfo], mbed: Iterable[MbedDevice]) -> list[PortInfo]:
    """Each port with ``probe_uid`` set when a probe (or Mbed device) shares its USB serial number
    or Mbed's detection names it as that device's port."""
    by_serial = {p.unique_id.lower(): p.unique_id for p in probes if not p.simulated}
    by_port = {m.serial_port: m.serial_number for m in mbed if m.serial_port}
    for m in mbed:
        by_serial.setdefault(m.serial_number.lower(), m.serial_number)
    out = []
    for port in ports:
        uid = by_serial.get((port.serial_number or "").lower()) or by_port.get(port.device)
        out.append(PortInfo(**{**asdict(port), "probe_uid": uid}))
    return out


def detect(
    probes: Callable[[], list[ProbeInfo]] = list_probes,
    mbed: Callable[[], list[MbedDevice]] = list_mbed_devices,
    ports: Callable[[], list[PortInfo]] = list_ports,
) -> Detected:
    """Ask every source; a source that fails becomes a note with its fix, not an exception."""
    notes: list[str] = []
    got_probes: list[ProbeInfo] = []
    got_mbed: list[MbedDevice] = []
    got_ports: list[PortInfo] = []
    try:
        got_probes = probes()
    except Exception as exc:  # pyOCD backends raise many kinds (libusb missing, permissions)
        notes.append(f"pyOCD could not list probes ({exc}); fix: install libusb-1.0-0 and the probe's udev rules "
                     "(pyOCD docs: 'udev rules'), then re-plug the probe")  # fmt: skip
    try:
        got_mbed = mbed()
    except FileNotFoundError:
        notes.append("Mbed device detection skipped: mbed-tools not found; fix: `pip install mbed-tools` (or build "
                     "an Mbed board once: `harness build` installs the Mbed CE tools)")  # fmt: skip
    except Exception as exc:
        notes.append(f"Mbed device detection failed: {exc}")
    try:
        got_ports = ports()
    except Exception as exc:
        notes.append(f"pyserial could not list serial ports ({exc})")
    return Detected(got_probes, got_mbed, match_ports(got_ports, got_probes, got_mbed), notes)


def _real_boards() -> list[BoardConfig]:
    return [b for b in (load_board(n) for n in list_boards()) if not b.simulated]


def guess_board(probe: ProbeInfo | None, device: MbedDevice | None, boards: list[BoardConfig]) -> str | None:
    """The real board behind a probe/Mbed device: by Mbed target, then by pyOCD target."""
    if probe is not None and probe.simulated:
        return None  # a simulated probe never stands for a real board
    if device is not None and device.target:
        hit = [b.name for b in boards if b.flash.mbed_target and b.flash.mbed_target.removesuffix("_SWD") == device.target]
        if hit:
            return hit[0]
    if probe is not None and probe.target:
        hit = [b.name for b in boards if b.flash.pyocd_target == probe.target]
        if hit:
            return hit[0]
    return None


def rig_skeleton(found: Detected, name: str = "my-rig", boards: list[BoardConfig] | None = None) -> str:
    """A rig TOML naming every real probe found, its serial port and the board guessed for it;
    what could not be known is left as a commented placeholder to fill in."""
    boards = _real_boards() if boards is None else boards
    devices = {m.serial_number.lower(): m for m in found.mbed}
    lines = [f"# Rig skeleton written by `harness rig detect`: check every line, then run `harness rig doctor {name}`.",
             f'name = "{name}"', 'description = "detected bench"', ""]  # fmt: skip
    real = [p for p in found.probes if not p.simulated]
    seen: set[str] = set()
    for i, probe in enumerate(real, start=1):
        device = devices.get(probe.unique_id.lower())
        board = guess_board(probe, device, boards)
        port = next((p.device for p in found.ports if p.probe_uid == probe.unique_id), None)
        label = f"{probe.vendor} {probe.product}".strip()
        lines.append("[[duts]]")
        if board and board not in seen:
            seen.add(board)
            lines.append(f'board = "{board}"')
        else:
            lines.append(f'board = "SET-ME"            # the board on probe {probe.unique_id}: one of {[b.name for b in boards]}')
        lines.append(f'probe = "{probe.unique_id}"   # {label}' + (f", board id says {probe.board_name}" if probe.board_name else ""))
        if port:
            lines.append(f'serial = "{port}"')
        else:
            lines.append('serial = "SET-ME"           # no serial port shares this probe\'s USB serial: give the USB-UART port')
        lines += [f"analyzer_channel = {min(i, 4)}", f"trigger_pin = {min(i, 7)}", ""]
    if not real:
        lines += ["# no debug probe found: plug the board's probe in and run `harness rig detect` again",
                  "[[duts]]", 'board = "SET-ME"', 'probe = "SET-ME"', 'serial = "SET-ME"', ""]  # fmt: skip
    lines += ["[power_analyzer]", 'kind = "n6705a"', 'resource = "SET-ME"          # e.g. TCPIP0::192.0.2.10::5025::SOCKET',
              "", "[[timing]]", 'kind = "pa-trigger"', "", "[[timing]]", 'kind = "cycle-counter"', ""]  # fmt: skip
    return "\n".join(lines)


# -- CLI -----------------------------------------------------------------------------------------
def detect_command(
    write: Path | None = typer.Option(None, "--write", "-w", help="Write a rig file skeleton here (e.g. instruments/my-rig.toml)."),
    name: str = typer.Option("my-rig", help="Rig name in the skeleton."),
    as_json: bool = typer.Option(False, "--json", help="Print what was found as JSON instead of tables."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --write file."),
) -> None:
    """List attached debug probes (pyOCD), Mbed boards (mbed-tools detect) and serial ports
    (pyserial) with each port matched to its probe; optionally write a rig file skeleton."""
    from rich.console import Console
    from rich.table import Table

    from harness.errors import HarnessError

    console = Console()
    found = detect()
    if as_json:
        console.print_json(json.dumps(found.to_json()))
    else:
        t = Table(title="debug probes (pyOCD)")
        for col in ("unique id", "vendor", "product", "board", "pyOCD target", "note"):
            t.add_column(col)
        for p in found.probes:
            t.add_row(p.unique_id, p.vendor, p.product, p.board_name or "-", p.target or "-",
                      "simulated: never used for a real board" if p.simulated else "")  # fmt: skip
        console.print(t)
        t = Table(title="Mbed boards (mbed-tools detect)")
        for col in ("serial number", "board", "Mbed target", "serial port", "mount point"):
            t.add_column(col)
        for m in found.mbed:
            t.add_row(m.serial_number, m.board_name or "-", m.target or "-", m.serial_port or "-", ", ".join(m.mount_points) or "-")
        console.print(t)
        t = Table(title="serial ports (pyserial)")
        for col in ("port", "USB id", "vendor", "serial number", "description", "probe"):
            t.add_column(col)
        for s in found.ports:
            t.add_row(s.device, s.usb_id, s.vendor, s.serial_number or "-", s.description, s.probe_uid or "-")
        console.print(t)
        for note in found.notes:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
    if write is not None:
        if write.exists() and not force:
            raise HarnessError(f"{write} exists; pass --force to overwrite it")
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(rig_skeleton(found, name))
        console.print(f"wrote {write}: fill in every SET-ME, then `harness rig doctor {write}`")
