"""The rig for the length of a campaign: its resources resolved (simulated parts started where
the rig file asks for them), the power monitor opened per board, and every monitor output
switched off, and confirmed off, however the campaign ends."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from harness.config.board import BoardConfig, load_board
from harness.config.rig import DutSettings, RigConfig
from harness.errors import StageError
from harness.instruments import registry, safety
from harness.instruments.errors import InstrumentConnectionError
from harness.instruments.protocols import PowerMonitor, TimingSource
from harness.instruments.safety import switch_off_confirmed
from harness.sim.rig import RigResources

LOG = logging.getLogger(__name__)


def _output_name(st: Station) -> str:
    return f"{st.board.name}: analyzer channel {st.dut.analyzer_channel}"


def _off_switch(monitor: PowerMonitor, what: str) -> Callable[[], str | None]:
    """What an emergency stop calls for this output (registered before it is switched on)."""
    return lambda: switch_off_confirmed(monitor, what)


@dataclass
class Station:
    """One board on the bench and the handles that reach it."""

    board: BoardConfig
    dut: DutSettings
    resources: RigResources
    monitor: PowerMonitor | None = None  # opened on first use
    sources: list[TimingSource] = field(default_factory=list)
    powered: bool = False
    # held for every exchange with the power monitor: shared by the stations of one N6705A
    # mainframe, whose acquisition trigger is per mainframe (harness.campaign.arbiter)
    monitor_lock: Any = field(default_factory=threading.RLock)

    @property
    def serial_url(self) -> str:
        return self.resources.serial_url(self.board.name)

    @property
    def probe(self) -> str | None:
        return self.resources.probe(self.board.name)

    def diagnosis(self) -> str | None:
        return self.resources.diagnosis(self.board.name)

    def untimed(self) -> AbstractContextManager[None]:
        """Around work that reads no time or power (output checks): the resource may run faster."""
        return self.resources.untimed(self.board.name)


class Bench:
    """Context manager: ``bench.station(board_name)`` gives a ready Station."""

    def __init__(self, rig: RigConfig, boards: list[str]):
        self.rig = rig
        self.boards = boards
        self.resources: RigResources | None = None
        self.stations: dict[str, Station] = {}
        self.off_unconfirmed: list[str] = []  # outputs that could not be confirmed off: said loudly

    def __enter__(self) -> Bench:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        configs = {}
        for name in self.boards:
            dut = self.rig.dut_for(name)
            if dut is None:
                raise StageError(f"board {name!r} is not on rig {self.rig.name!r}")
            configs[name] = (load_board(name), dut)
        from harness.campaign.arbiter import monitor_locks

        self.resources = RigResources(self.rig, [b for b, _ in configs.values()]).start()
        locks = monitor_locks(self.rig, list(configs))
        for name, (board, dut) in configs.items():
            self.stations[name] = Station(board, dut, self.resources, monitor_lock=locks[name])

    def station(self, board: str) -> Station:
        return self.stations[board]

    def power_up(self, st: Station) -> PowerMonitor | None:
        """Open the board's power monitor and switch its supply on (limits from the board file:
        voltage, current limit, OVP); returns the monitor, or None on a latency-only rig."""
        from harness.instruments.sources import build_timing_sources

        if st.powered:
            return st.monitor
        res = st.resources.monitor(st.board.name)
        if res is not None:
            driver = registry.load(registry.POWER_MONITORS, res.driver)
            with st.monitor_lock:
                st.monitor = driver.from_resource(res)
                safety.output_on(id(st), _off_switch(st.monitor, _output_name(st)))
                st.monitor.apply_supply(st.board.supply, settle_s=self.rig.power_analyzer.settle_s)
        st.sources = build_timing_sources(self.rig, st.board, with_monitor=st.monitor is not None)
        if not st.sources:
            raise StageError(f"rig {self.rig.name!r}: no timing source left for {st.board.name} "
                             "(add cycle-counter, scope or logic-analyzer to [[timing]])")
        st.powered = True
        return st.monitor

    def heal(self, st: Station, exc: Exception) -> bool:
        """After a broken monitor connection: reconnect (re-identify, re-apply the supply). True
        if the measurement in flight may be retried."""
        if st.monitor is None or not isinstance(exc, InstrumentConnectionError):
            return False
        LOG.warning("%s: power monitor connection broken (%s); reconnecting", st.board.name, exc)
        try:
            st.monitor.reconnect()
        except Exception as again:
            LOG.error("%s: reconnect failed: %s", st.board.name, again)
            return False
        LOG.info("%s: power monitor reconnected (%s)", st.board.name,
                 st.monitor.identity.text() if st.monitor.identity else "?")
        return True

    def identities(self, st: Station) -> str | None:
        ident = st.monitor.identity if st.monitor is not None else None
        return ident.text() if ident is not None else None

    def instruments(self, st: Station) -> list[dict[str, Any]]:
        """What measured this board, with the simulated flag each instrument declared itself."""
        out: list[dict[str, Any]] = []
        ident = st.monitor.identity if st.monitor is not None else None
        if ident is not None:
            out.append({"role": "power monitor", "driver": ident.driver, "idn": ident.text(),
                        "simulated": ident.simulated})
        return out

    def _switch_off(self, st: Station) -> None:
        assert st.monitor is not None
        with st.monitor_lock:  # never while another station's measurement holds this instrument
            msg = switch_off_confirmed(st.monitor, _output_name(st))
        if msg is None:
            safety.output_off(id(st))
        else:
            self.off_unconfirmed.append(msg)

    def close(self) -> None:
        """Outputs off first (safety, each confirmed by reading the state back, retried over a
        fresh connection), then everything else; never raises."""
        for st in self.stations.values():
            if st.monitor is not None:
                self._switch_off(st)
                with contextlib.suppress(Exception):
                    st.monitor.close()
                st.monitor = None
            for s in st.sources:
                with contextlib.suppress(Exception):
                    s.close()
            st.powered = False
        if self.resources is not None:
            with contextlib.suppress(Exception):
                self.resources.stop()
            self.resources = None
