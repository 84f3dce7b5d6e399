"""`harness rig doctor`: can this rig run a campaign? One row per part (tools, Mbed tree, board
pins, power analyzer, timing instruments, and per board: serial port, debug probe, the flashed
firmware answering `identify`, the GPIO wired to the analyzer's digital input), each failing row
with what to do about it (install, plug, wire, set a field). Exit 0 only when every row passes.

The firmware and wiring rows power the board from its analyzer channel within the board file's
limits (OVP, current limit) and switch the output off again whatever happens; they run only
when the analyzer and the serial port answered. Drivers are reached through narrow calls only:
one ``open_monitor(dut)`` hook for the power monitor (its identity, apply_supply,
configure_acquisition, arm, fetch, abort, close), DutLink.identify / load_input / infer, and
pyOCD's probe list."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import typer

from harness.config.board import BoardConfig, load_board
from harness.config.rig import DutSettings, RigConfig, load_rig

INSTALL_HINT = "run `bash scripts/setup.sh` (or `apt-get install {pkg}`)"


@dataclass(frozen=True)
class Row:
    part: str
    address: str
    ok: bool
    detail: str
    fix: str = ""


class Failed(Exception):
    """A check failed; ``fix`` says what to do."""

    def __init__(self, detail: str, fix: str):
        self.fix = fix
        super().__init__(detail)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _run(rows: list[Row], part: str, address: str, check: Callable[[], str], fix_for: Callable[[str], str]) -> bool:
    try:
        rows.append(Row(part, address, True, check() or ""))
        return True
    except Failed as exc:
        rows.append(Row(part, address, False, _first_line(exc), exc.fix))
    except Exception as exc:  # a doctor reports every failure, it never stops at the first
        detail = _first_line(exc)
        rows.append(Row(part, address, False, detail, fix_for(detail)))
    return False


def _no_fix(_detail: str) -> str:
    return ""


# -- what to do about a failure, by what the libraries say ------------------------------------
def visa_fix(detail: str, field: str) -> str:
    d = detail.lower()
    if "refused" in d:
        return (f"nothing listens at that address/port: switch the instrument on and check `{field}` "
                "(the N6705A's raw SCPI socket is port 5025; LAN must be enabled in Utility > I/O)")  # fmt: skip
    if "no route" in d or "unreachable" in d or "timed out" in d or "timeout" in d:
        return (f"no answer from that host: check the LAN cable and the instrument's IP address "
                f"(front panel: Utility > I/O > LAN), then set `{field}`")  # fmt: skip
    if "rsrc_nfound" in d or "resource not found" in d or "not found" in d:
        return (f"VISA finds no such resource: plug the instrument's USB/LAN cable in (TCPIP: is the host up, the IP right?), list resources with "
                f"`python -m pyvisa info` / `harness rig detect`, and set `{field}`")  # fmt: skip
    if "error queue" in d:
        return "the instrument had errors queued: send *CLS (or power-cycle it) and run the doctor again"
    if "no module" in d or "module" in d:
        return "the addressed output has no module: set each [[duts]] analyzer_channel to a populated output"
    return f"check the instrument and `{field}`"


def serial_fix(detail: str, field: str) -> str:
    d = detail.lower()
    if "permission denied" in d:
        return "no permission for the port: `sudo usermod -aG dialout $USER` and log in again"
    if "busy" in d or "resource temporarily unavailable" in d:
        return "another program holds the port (a serial monitor?): close it"
    return (f"plug the board's USB cable (or its USB-UART adapter) in, list ports with `harness rig detect`, "
            f"and set `{field}` to the right one")  # fmt: skip


# -- individual checks ---------------------------------------------------------------------------
def _check_tools(rows: list[Row], boards: list[BoardConfig]) -> None:
    need = {"arm-none-eabi-gcc": "gcc-arm-none-eabi libnewlib-arm-none-eabi"}
    if any(b.build.template == "mbed" for b in boards):
        need |= {"arm-none-eabi-g++": "libstdc++-arm-none-eabi-newlib", "cmake": "cmake", "ninja": "ninja-build"}
    for tool, pkg in need.items():

        def check(tool: str = tool, pkg: str = pkg) -> str:
            found = shutil.which(tool)
            if not found:
                raise Failed(f"{tool} not found on $PATH", INSTALL_HINT.format(pkg=pkg))
            return found

        _run(rows, "tool", tool, check, lambda _d: "")


def _check_mbed(rows: list[Row], rig: RigConfig, boards: list[BoardConfig]) -> None:
    from harness.build.mbed import CLONE_COMMAND, check_tree, mbed_os_path
    from harness.build.mbed_pins import board_pin_problems

    mbed = [b for b in boards if b.build.template == "mbed"]
    if not mbed:
        return
    tree = mbed_os_path(None, rig.mbed_os)

    def tree_check() -> str:
        if tree is None:
            raise Failed("no Mbed CE tree configured (the real boards' firmware is built with it)",
                         f"clone one (`{CLONE_COMMAND} mbed-ce`) and set `mbed_os` in the rig file "
                         "or $MBED_OS_PATH")  # fmt: skip
        try:
            check_tree(mbed[0], tree)
        except Exception as exc:
            lines = str(exc).splitlines()
            raise Failed(lines[0], lines[1].strip().removeprefix("fix: ") if len(lines) > 1 else "") from None
        return str(tree)

    if not _run(rows, "Mbed CE tree", str(tree or "-"), tree_check, lambda _d: ""):
        return
    assert tree is not None
    for b in mbed:

        def pins(b: BoardConfig = b) -> str:
            problems = board_pin_problems(b, tree)
            if problems:
                raise Failed("; ".join(p.split(": ", 1)[1] for p in problems),
                             f"set the named field(s) in {b.source_file or 'the board file'} to pins of the target")  # fmt: skip
            return f"benchmark {b.gpio.benchmark_pin}, UART {b.uart.tx_pin}/{b.uart.rx_pin} exist in {b.flash.mbed_target}"

        _run(rows, f"pins {b.name}", b.flash.mbed_target or "-", pins, lambda _d: "")


# ``open_monitor(dut) -> power monitor``: the one way the doctor reaches the power analyzer (its
# identity, apply_supply, configure_acquisition, arm, fetch, abort, close); the CLI passes the
# rig's driver, tests may pass their own.
OpenMonitor = Callable[[DutSettings], Any]


def n6705a_opener(rig: RigConfig, resolve: Callable[[str], tuple[str, str]]) -> OpenMonitor:
    """Open the rig's N6705A channel of a board (the address from ``resolve``)."""
    from harness.instruments.n6705a import N6705A

    pa = rig.power_analyzer

    def open_monitor(dut: DutSettings) -> Any:
        return N6705A.open(resolve(dut.board)[0], dut.analyzer_channel, pa.backend, pa.timeout_ms)

    return open_monitor


def _check_analyzer(rig: RigConfig, open_monitor: OpenMonitor) -> str:
    parts: list[str] = []
    ident = None
    for ch in sorted({d.analyzer_channel for d in rig.duts}):
        dut = next(d for d in rig.duts if d.analyzer_channel == ch)
        mon = open_monitor(dut)  # opening identifies the instrument (and drains old errors)
        try:
            ident = mon.identity
        finally:
            mon.close()  # identify only: the output was never switched on
        assert ident is not None
        if ident.stale_errors:
            raise Failed(f"error queue was not empty: {list(ident.stale_errors)}", visa_fix("error queue", ""))
        parts.append(f"ch{ch}={ident.module}" if ident.module else f"ch{ch}")
    assert ident is not None
    label = " (SIMULATED)" if getattr(ident, "simulated", False) else ""
    return f"{ident.manufacturer} {ident.model} {ident.serial} fw {ident.firmware}{label}; " + ", ".join(parts)


def _check_visa(resource: str, backend: str, timeout_ms: int) -> str:
    from harness.instruments.visa import ScpiInstrument, open_resource

    inst = ScpiInstrument(open_resource(resource, backend, timeout_ms), resource)
    try:
        idn = inst.query("*IDN?")
        inst.check("startup")
        return idn
    finally:
        inst.close()


def _check_serial(port: str, baudrate: int) -> str:
    import serial

    with serial.serial_for_url(port, baudrate=baudrate, timeout=0.2):
        return f"opens at {baudrate} Bd"


def _check_probe(board: BoardConfig, dut: DutSettings, index: int) -> str:
    field = f"duts.{index}.probe"
    if not dut.probe:
        raise Failed("no probe given", f"plug the board's debug probe in, find its unique id with `harness rig detect`, set `{field}`")
    if dut.probe.startswith("sim:") and not board.simulated:
        raise Failed(f"{dut.probe} is a simulated probe and {board.name} a real board",
                     f"set `{field}` to the real probe's unique id (`harness rig detect`)")  # fmt: skip
    from pyocd.core.helpers import ConnectHelper

    probes = ConnectHelper.get_all_connected_probes(blocking=False, print_wait_message=False)
    ids = [p.unique_id for p in probes]
    if dut.probe not in ids:
        found = ", ".join(i for i in ids if not i.startswith("sim:")) or "none"
        raise Failed(f"probe {dut.probe} not listed by pyOCD (real probes found: {found})",
                     f"plug the probe in (USB cable, udev rules for its VID/PID), or set `{field}` to the id "
                     "`harness rig detect` lists")  # fmt: skip
    return "listed by pyOCD"


def _flash_hint(board: BoardConfig) -> str:
    return (f"flash the benchmark firmware: `harness build --board {board.name} --model <artifact> --out fw` then "
            f"`harness flash --board {board.name} --firmware fw/firmware.hex`")  # fmt: skip


def _check_board(board: BoardConfig, dut: DutSettings, index: int, port: str, rows: list[Row],
                 open_monitor: OpenMonitor | None, settle_s: float) -> None:  # fmt: skip
    """Power the board (when the rig has an analyzer), ask the firmware who it is, then check the
    GPIO reaches the analyzer's digital input. Without an analyzer the board is powered by its own
    USB and only the firmware is asked."""
    if open_monitor is None:
        _ask_firmware(board, dut, index, port, rows, None)
        return
    with contextlib.ExitStack() as stack:
        pa = open_monitor(dut)
        stack.callback(pa.close)  # output off and release, on every path
        pa.apply_supply(board.supply, settle_s=max(settle_s, 0.2))  # OVP + current limit from the board file
        _ask_firmware(board, dut, index, port, rows, pa)


def _ask_firmware(board: BoardConfig, dut: DutSettings, index: int, port: str, rows: list[Row], pa: Any) -> None:
    from harness.dut.link import DutLink

    info: Any = None
    try:
        link = DutLink(port, baudrate=dut.baudrate or board.uart.baudrate, timeout=3.0)
    except Exception as exc:
        rows.append(Row(f"firmware {board.name}", port, False, _first_line(exc), serial_fix(str(exc), f"duts.{index}.serial")))
        return
    with link:

        def identify() -> str:
            nonlocal info
            try:
                link.resync()
                info = link.identify()
            except Exception as exc:
                raise Failed(f"no answer to `identify` ({_first_line(exc)})",
                             f"check the console wiring in {board.source_file or 'the board file'} ([uart]); "
                             + _flash_hint(board)) from None  # fmt: skip
            if info.board != board.name:
                raise Failed(f"the firmware was built for {info.board!r}, this is {board.name!r}", _flash_hint(board))
            return f"{info.board} build {info.build_id} model {info.model} ({info.model_hash[:12]}), protocol {info.protocol}"

        if not _run(rows, f"firmware {board.name}", port, identify, lambda _d: _flash_hint(board)) or pa is None:
            return

        def pulse() -> str:
            return _wiring_pulse(pa, link, info.input_bytes, board, dut, index)

        _run(rows, f"GPIO wiring {board.name}", f"analyzer digital pin {dut.trigger_pin}", pulse, _no_fix)


def _wiring_pulse(pa: Any, link: Any, input_bytes: int, board: BoardConfig, dut: DutSettings, index: int) -> str:
    """One inference (the benchmark pin goes high during it) while the analyzer waits for a
    trigger on its digital input: a record means the wire is there."""
    wire = (f"wire {board.name}'s benchmark pin {board.gpio.benchmark_pin} (header position: gpio comment in "
            f"{board.source_file or 'its board file'}) to the analyzer's digital port pin {dut.trigger_pin} and GND "
            f"to GND, or set `duts.{index}.trigger_pin` to the pin it is wired to")  # fmt: skip
    link.load_input(bytes(input_bytes))
    calib = link.infer(1, 0, 0)
    ticks = calib.cycles[0]
    latency = max(ticks / calib.counter_hz if ticks is not None and calib.counter_hz else 0.1, 1e-3)
    pa.configure_acquisition(latency * 3 + 0.01, 0.001, trigger_pin=dut.trigger_pin)
    pa.arm()
    link.infer(1, 0, 10_000)
    try:
        wf = pa.fetch(timeout_s=max(2.0, latency * 4))
    except Exception as exc:
        with contextlib.suppress(Exception):  # the missing trigger is what the row reports
            pa.abort()
        raise Failed(f"the analyzer saw no edge on digital pin {dut.trigger_pin} ({_first_line(exc)})", wire) from None
    return f"pulse seen: record of {len(wf)} samples triggered on pin {dut.trigger_pin}"


def diagnose(rig: RigConfig, resolve: Callable[[str], tuple[str, str]], open_monitor: OpenMonitor | None = None
             ) -> list[Row]:  # fmt: skip
    """Every check of the rig; ``resolve(board) -> (analyzer address, serial port)``;
    ``open_monitor`` defaults to the N6705A driver (n6705a_opener)."""
    if open_monitor is None and rig.power_analyzer.kind == "n6705a":
        open_monitor = n6705a_opener(rig, resolve)
    rows: list[Row] = []
    boards: dict[str, BoardConfig] = {}
    for i, d in enumerate(rig.duts):

        def load(d: DutSettings = d, i: int = i) -> str:
            boards[d.board] = load_board(d.board)
            return boards[d.board].description or boards[d.board].name

        _run(rows, f"board {d.board}", f"duts.{i}.board", load,
             lambda detail: "set the field to a board of boards/ (`harness validate` lists them) or add its board file")  # fmt: skip
    _check_tools(rows, list(boards.values()))
    _check_mbed(rows, rig, list(boards.values()))
    pa = rig.power_analyzer
    analyzer_ok = False
    no_driver = open_monitor is None and pa.kind != "none"
    if no_driver:
        rows.append(Row(f"power monitor ({pa.kind})", pa.resource, False, f"no driver handed to the doctor for kind {pa.kind!r}",
                        "run `harness rig doctor`, which opens the rig's own driver"))  # fmt: skip
    if open_monitor is not None:
        address = resolve(rig.duts[0].board)[0]
        analyzer_ok = _run(rows, f"power monitor ({pa.kind})", address, partial(_check_analyzer, rig, open_monitor),
                           partial(visa_fix, field="power_analyzer.resource"))  # fmt: skip
    for i, t in enumerate(rig.timing):
        if t.kind == "scope" and t.resource:
            _run(rows, f"scope ({t.dialect})", t.resource, partial(_check_visa, str(t.resource), pa.backend, pa.timeout_ms),
                 partial(visa_fix, field=f"timing.{i}.resource"))  # fmt: skip
        elif t.kind == "logic-analyzer":

            def sigrok(t: Any = t) -> str:
                if shutil.which("sigrok-cli") is None:
                    raise Failed("sigrok-cli not installed", INSTALL_HINT.format(pkg="sigrok-cli"))
                return f"sigrok-cli present (driver {t.resource or 'fx2lafw'})"

            _run(rows, "logic analyzer", t.resource or "fx2lafw", sigrok, lambda _d: "")
    for i, d in enumerate(rig.duts):
        board = boards.get(d.board)
        if board is None:
            continue
        port = resolve(d.board)[1]
        serial_ok = _run(rows, f"serial {d.board}", str(port), partial(_check_serial, port, d.baudrate or board.uart.baudrate),
                         partial(serial_fix, field=f"duts.{i}.serial"))  # fmt: skip
        if board.simulated or d.probe:
            _run(rows, f"probe {d.board}", d.probe or "-", partial(_check_probe, board, d, i), _no_fix)
        else:
            rows.append(Row(f"probe {d.board}", "-", False, "no probe given",
                            f"plug the board's debug probe in and set `duts.{i}.probe` to the id `harness rig detect` lists"))  # fmt: skip
        if serial_ok and (analyzer_ok or (open_monitor is None and not no_driver)):
            try:
                _check_board(board, d, i, port, rows, open_monitor, pa.settle_s)
            except Exception as exc:  # powering the board failed (limits, instrument error)
                rows.append(Row(f"firmware {d.board}", port, False, _first_line(exc),
                                visa_fix(str(exc), "power_analyzer.resource")))  # fmt: skip
        else:
            why = "the serial port" if not serial_ok else "the power analyzer (it powers the board)"
            rows.append(Row(f"firmware {d.board}", str(port), False, f"not checked: needs {why}",
                            "fix the rows above first"))  # fmt: skip
    return rows


def can_run_campaign(rows: list[Row]) -> bool:
    return bool(rows) and all(r.ok for r in rows)


# -- CLI -----------------------------------------------------------------------------------------
def doctor_command(rig: str = typer.Argument("sim", help="Rig name or instruments/<rig>.toml")) -> None:
    """Check every part of a rig (tools, Mbed tree, pins, power analyzer, timing instruments,
    serial ports, probes, the flashed firmware and the GPIO wiring); each failing row says what to
    do. Exit 0 only when the rig can run a campaign."""
    from rich.console import Console
    from rich.table import Table

    from harness.instruments import registry
    from harness.instruments.cli import drivers_table
    from harness.sim.rig import RigResources

    console = Console()
    cfg = load_rig(rig)  # config-level checks first: boards, supply limits against the analyzer's range
    with RigResources(cfg, [load_board(d.board) for d in cfg.duts]) as res:

        def resolve(board: str) -> tuple[str, str]:
            mon = res.monitor(board)
            return (mon.address if mon is not None else ""), res.serial_url(board)

        def open_monitor(dut: DutSettings) -> Any:  # the rig's driver, found by name (entry points)
            return registry.load(registry.POWER_MONITORS, cfg.power_analyzer.kind).from_resource(res.monitor(dut.board))

        rows = diagnose(cfg, resolve, open_monitor if cfg.power_analyzer.kind != "none" else None)
    table = Table(title=f"rig {cfg.name}" + (f" ({Path(cfg.source_file).name})" if cfg.source_file else ""))
    for col in ("part", "address", "status", "detail", "fix"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r.part, r.address, "[green]OK[/]" if r.ok else "[red]FAIL[/]", r.detail, r.fix)
    console.print(table)
    console.print(drivers_table())
    bad = [r for r in rows if not r.ok]
    if bad:
        console.print(f"[red]{len(bad)} of {len(rows)} checks failed[/]: this rig cannot run a campaign yet")
        raise typer.Exit(1)
    console.print(f"[green]all {len(rows)} checks passed[/]: the rig can run a campaign")


