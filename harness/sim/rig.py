"""SimRig: the simulated bench in one object. Starts each emulated board in its own thread with
its UART endpoint and SignalBus, registers it for the in-process pyOCD ``sim:`` probe, optionally
serves each probe to ``remote:`` clients (pyOCD's DebugProbeServer), and starts the simulated
N6705A (when that package is present) with each board wired to its analyzer channel and trigger
pin from the rig file's DutSettings."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.board import BoardConfig, load_board
from harness.config.rig import DutSettings, RigConfig, load_rig
from harness.sim import registry
from harness.sim.board import SimBoard
from harness.sim.errors import SimError
from harness.sim.signals import SignalBus

LOG = logging.getLogger(__name__)


@dataclass
class SimDut:
    """One board of the rig and how the host reaches it."""

    board: SimBoard
    dut: DutSettings
    pyocd_server: Any = None
    _created: bool = field(default=False, repr=False)

    @property
    def board_config(self) -> BoardConfig:
        return self.board.config

    @property
    def name(self) -> str:
        return self.board.name

    @property
    def serial_url(self) -> str:
        return self.board.serial_url

    @property
    def probe_uid(self) -> str:
        return f"sim:{self.board.name}"

    @property
    def bus(self) -> SignalBus:
        return self.board.bus

    @property
    def pyocd_remote(self) -> str | None:
        """``remote:127.0.0.1:PORT`` when the probe is served, else None."""
        if self.pyocd_server is None:
            return None
        return f"remote:127.0.0.1:{self.pyocd_server.port}"


class SimRig:
    """Context manager running simulated boards (and the simulated N6705A) until ``stop()``."""

    def __init__(
        self,
        boards: Sequence[BoardConfig | str],
        duts: Sequence[DutSettings] | None = None,
        *,
        analyzer: bool = True,
        pyocd_servers: bool = False,
        persist: bool = True,
        state_dir: Path | None = None,
    ):
        self._configs = [load_board(b) if isinstance(b, str) else b for b in boards]
        for cfg in self._configs:
            if cfg.sim is None:
                raise SimError(f"{cfg.name}: not a simulated board (no [sim] section)")
        given = {d.board: d for d in (duts or [])}
        self._duts_settings = [
            given.get(cfg.name)
            or DutSettings(
                board=cfg.name,
                probe=f"sim:{cfg.name}",
                analyzer_channel=min(i + 1, 4),
                trigger_pin=min(i + 1, 7),
            )
            for i, cfg in enumerate(self._configs)
        ]
        self._want_analyzer, self._want_servers = analyzer, pyocd_servers
        self._persist, self._state_dir = persist, state_dir
        self.duts: dict[str, SimDut] = {}
        self.analyzer: Any = None

    @classmethod
    def from_rig(cls, rig: RigConfig | str | Path = "sim", **kwargs: Any) -> SimRig:
        """The simulated boards of a rig file (instruments/sim.toml by default)."""
        cfg = rig if isinstance(rig, RigConfig) else load_rig(rig)
        boards = [load_board(d.board) for d in cfg.duts]
        sims = [(b, d) for b, d in zip(boards, cfg.duts, strict=True) if b.sim is not None]
        return cls([b for b, _ in sims], [d for _, d in sims], **kwargs)

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> SimRig:
        try:
            for cfg, dut in zip(self._configs, self._duts_settings, strict=True):
                existing = registry.get(cfg.name)
                board = existing or registry.register(
                    SimBoard(cfg, persist=self._persist, state_dir=self._state_dir)
                )
                sd = SimDut(board, dut, _created=existing is None)
                self.duts[cfg.name] = sd
                board.start()
                if self._want_servers:
                    sd.pyocd_server = _serve_probe(sd.probe_uid)
            if self._want_analyzer:
                self.analyzer = self._start_analyzer()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_analyzer(self) -> Any:
        from harness.sim.n6705a import SimN6705A

        # the analyzer's noise floor: the largest of the boards' estimates (board files, [sim])
        noise = max((sd.board_config.sim.current_noise_a for sd in self.duts.values() if sd.board_config.sim), default=0.0)
        pa = SimN6705A(host="127.0.0.1", port=0, noise_a=noise)
        for sd in self.duts.values():
            pa.attach(sd.dut.analyzer_channel, sd.bus)
            pa.wire_pin(sd.dut.trigger_pin, sd.bus)
        # A mainframe has its slots filled from 1: channels below a used one hold a module too
        # (with nothing connected), so channel numbers match the rig file's.
        used = {sd.dut.analyzer_channel for sd in self.duts.values()}
        for ch in range(1, max(used, default=0)):
            if ch not in used:
                pa.attach(ch, None)
        return pa.start() or pa

    def stop(self) -> None:
        if self.analyzer is not None:
            self.analyzer.stop()
            self.analyzer = None
        for sd in self.duts.values():
            if sd.pyocd_server is not None:
                sd.pyocd_server.stop()
            sd.board.stop()
            if sd._created:
                registry.unregister(sd.name)
        self.duts.clear()

    def __enter__(self) -> SimRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access --------------------------------------------------------------------------
    def __getitem__(self, board: str) -> SimDut:
        return self.duts[board]

    @property
    def visa_resource(self) -> str | None:
        return None if self.analyzer is None else self.analyzer.resource

    def errors(self) -> dict[str, SimError]:
        """Boards that stopped on a fault or timeout (their firmware needs attention)."""
        return {n: sd.board.error for n, sd in self.duts.items() if sd.board.error is not None}

    def endpoints(self) -> dict[str, dict[str, str | None]]:
        return {
            n: {
                "serial": sd.serial_url,
                "probe": sd.probe_uid,
                "pyocd_remote": sd.pyocd_remote,
                "analyzer_channel": str(sd.dut.analyzer_channel),
                "trigger_pin": str(sd.dut.trigger_pin),
            }
            for n, sd in self.duts.items()
        }


def sim_flasher(board: BoardConfig, probe: str | None = None, drive: Any = None, timeout_s: float = 60.0) -> Any:
    """Flasher registry entry for ``flash.method = "sim"``: pyOCD through the ``sim:`` probe
    plugin, the board's own simulated probe unless another is given."""
    from harness.flash.pyocd_flasher import PyocdFlasher

    return PyocdFlasher(board, probe=probe or f"sim:{board.name}", timeout_s=timeout_s)


def _serve_probe(uid: str, timeout: float = 5.0) -> Any:
    """Serve a sim probe over pyOCD's remote-probe protocol on an OS-chosen loopback port."""
    from pyocd.core.session import Session
    from pyocd.probe.aggregator import DebugProbeAggregator
    from pyocd.probe.tcp_probe_server import DebugProbeServer

    probe = DebugProbeAggregator.get_probe_with_id(uid)
    if probe is None:
        raise SimError(f"no pyOCD probe {uid}")
    server = DebugProbeServer(Session(None), probe, port=0, serve_local_only=True)
    server.start()
    deadline = time.monotonic() + timeout
    while server.port == 0:  # the port is known only once the server thread has bound
        if time.monotonic() > deadline:
            raise SimError(f"pyOCD probe server for {uid} did not start")
        time.sleep(0.01)
    return server


def _emulated_here(dut: DutSettings) -> bool:
    return dut.serial == "sim" or dut.probe is None or dut.probe.startswith("sim:")


class RigResources:
    """Every address a campaign needs, per board, with the rig file's 'sim' values resolved
    once into ordinary ones: the simulated board's serial URL and ``sim:`` probe, the simulated
    power monitor's VISA address, serial port or device path. Parts the rig file does not
    call simulated are passed through untouched, so the campaign code never asks which is which.

    Use as a context manager (or ``start()``/``stop()``): simulated parts run meanwhile."""

    def __init__(self, rig: RigConfig, boards: Sequence[BoardConfig]):
        self.rig = rig
        self.boards = {b.name: b for b in boards}
        self.simrig: SimRig | None = None
        self.monitor_sims: dict[str, Any] = {}  # board -> simulated PPK2 / Joulescope

    def _dut(self, board: str) -> DutSettings:
        dut = self.rig.dut_for(board)
        if dut is None:
            raise SimError(f"board {board!r} is not on rig {self.rig.name!r}")
        return dut

    def start(self) -> RigResources:
        pa = self.rig.power_analyzer
        # a simulated board is emulated here unless the rig file reaches one served elsewhere
        # (`harness sim serve --write-rig`: remote: probe, socket:// serial)
        sims = [b for b in self.boards.values() if b.simulated and _emulated_here(self._dut(b.name))]
        sim_n6705a = pa.kind == "n6705a" and pa.started_by_station
        for name, board in self.boards.items():
            if self._dut(name).serial == "sim" and not board.simulated:
                raise SimError(f"{name}: serial = 'sim' but the board is not simulated; give its port")
        try:
            if sims or sim_n6705a:
                self.simrig = SimRig(sims, [self._dut(b.name) for b in sims], analyzer=sim_n6705a).start()
            if pa.started_by_station and pa.kind != "n6705a":
                self._start_monitor_sims(pa.kind)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_monitor_sims(self, kind: str) -> None:
        from harness.sim import monitors

        for name in self.boards:
            sd = self.simrig.duts.get(name) if self.simrig is not None else None
            if sd is None:
                raise SimError(f"{name}: a simulated {kind} can only measure a simulated board")
            self.monitor_sims[name] = monitors.start(kind, sd.board_config, sd.bus, self._dut(name).trigger_pin)

    def stop(self) -> None:
        for sim in self.monitor_sims.values():
            sim.stop()
        self.monitor_sims.clear()
        if self.simrig is not None:
            self.simrig.stop()
            self.simrig = None

    def __enter__(self) -> RigResources:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _sim_dut(self, board: str) -> SimDut | None:
        return self.simrig.duts.get(board) if self.simrig is not None else None

    # -- per-board addresses -------------------------------------------------------------
    def serial_url(self, board: str) -> str:
        """Asked each time: a restarted simulated board listens on a new port."""
        dut, sd = self._dut(board), self._sim_dut(board)
        return sd.serial_url if (dut.serial == "sim" and sd is not None) else dut.serial

    def probe(self, board: str) -> str | None:
        dut, sd = self._dut(board), self._sim_dut(board)
        return dut.probe or (sd.probe_uid if sd is not None else None)

    def monitor(self, board: str) -> Any:
        """The board's power monitor as a harness.instruments.protocols.MonitorResource, or None
        on a latency-only rig."""
        from harness.instruments.protocols import MonitorResource

        pa, dut = self.rig.power_analyzer, self._dut(board)
        if pa.kind == "none":
            return None
        address: str | None = pa.resource
        if pa.started_by_station:
            if pa.kind == "n6705a":
                address = self.simrig.visa_resource if self.simrig is not None else None
            else:
                address = self.monitor_sims[board].address
        if address is None:
            raise SimError("the simulated rig started without its power monitor")
        return MonitorResource(pa.kind, address, dut.analyzer_channel, pa.timeout_ms,
                               {"backend": pa.backend, **pa.options,
                                **(self.monitor_sims[board].options if board in self.monitor_sims else {})})

    def diagnosis(self, board: str) -> str | None:
        """Why a simulated board stopped (fault, timeout), to add to a failure's reason."""
        sd = self._sim_dut(board)
        if sd is None or sd.board.error is None:
            return None
        return f"simulated board: {sd.board.error}"

    def untimed(self, board: str) -> contextlib.AbstractContextManager[None]:
        """A scope for work whose time and power nobody reads (checking outputs on many inputs):
        a board emulated here skips its flash data-timing model meanwhile (SimBoard.untimed,
        same results, 1.3-2x faster); a real board, or one served elsewhere, runs as always."""
        sd = self._sim_dut(board)
        return sd.board.untimed() if sd is not None else contextlib.nullcontext()

    def simulated(self, board: str) -> bool:
        return self.boards[board].simulated
