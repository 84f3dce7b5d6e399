"""The rig for the length of a campaign: simulated parts started, the power analyzer opened per
board channel, and every analyzer output switched off however the campaign ends."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from harness.config.board import BoardConfig, load_board
from harness.config.rig import DutSettings, RigConfig
from harness.errors import StageError

LOG = logging.getLogger(__name__)


@dataclass
class Station:
    """One board on the bench and the handles that reach it."""

    board: BoardConfig
    dut: DutSettings
    serial: str  # from the rig file; "sim" = the simulated board's own endpoint
    probe: str | None
    analyzer: Any = None  # harness.instruments.n6705a.N6705A, opened on first use
    sources: list[Any] = field(default_factory=list)
    sim: Any = None  # harness.sim.rig.SimDut for simulated boards

    @property
    def serial_url(self) -> str:
        """Asked each time: a restarted simulated board listens on a new port."""
        return self.sim.serial_url if (self.serial == "sim" and self.sim is not None) else self.serial

    def sim_error(self) -> str | None:
        if self.sim is None or self.sim.board.error is None:
            return None
        return str(self.sim.board.error)


class Bench:
    """Context manager: ``bench.station(board_name)`` gives a ready Station."""

    def __init__(self, rig: RigConfig, boards: list[str]):
        self.rig = rig
        self.boards = boards
        self.simrig: Any = None
        self.stations: dict[str, Station] = {}

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
        sims = [(b, d) for b, d in configs.values() if b.simulated]
        want_sim_pa = self.rig.power_analyzer.kind == "n6705a" and self.rig.power_analyzer.resource == "sim"
        if sims or want_sim_pa:
            from harness.sim.rig import SimRig

            self.simrig = SimRig([b for b, _ in sims], [d for _, d in sims], analyzer=want_sim_pa).start()
        for name, (board, dut) in configs.items():
            sim = self.simrig.duts.get(name) if self.simrig is not None else None
            if dut.serial == "sim" and sim is None:
                raise StageError(f"{name}: serial = 'sim' but the board is not simulated; give its port")
            probe = dut.probe or (sim.probe_uid if sim is not None else None)
            self.stations[name] = Station(board, dut, dut.serial, probe, sim=sim)

    @property
    def analyzer_resource(self) -> str | None:
        pa = self.rig.power_analyzer
        if pa.kind == "none":
            return None
        if pa.resource == "sim":
            return self.simrig.visa_resource if self.simrig is not None else None
        return pa.resource

    def station(self, board: str) -> Station:
        return self.stations[board]

    def power_up(self, st: Station) -> Any:
        """Open the analyzer channel of this board and switch its supply on (limits from the
        board file: voltage, current limit, OVP); returns the driver or None without analyzer."""
        if st.analyzer is not None:
            return st.analyzer
        resource = self.analyzer_resource
        if resource is None:
            return None
        from harness.instruments.n6705a import N6705A
        from harness.instruments.sources import build_timing_sources

        pa = self.rig.power_analyzer
        st.analyzer = N6705A.open(resource, st.dut.analyzer_channel, pa.backend, pa.timeout_ms)
        st.analyzer.apply_supply(st.board.supply, settle_s=pa.settle_s)
        st.sources = build_timing_sources(self.rig, st.board)
        return st.analyzer

    def identities(self, st: Station) -> str | None:
        ident = getattr(st.analyzer, "identity", None)
        if ident is None:
            return None
        return ",".join(str(x) for x in (ident.manufacturer, ident.model, ident.serial, ident.firmware)) + (
            f" module {ident.module}" if getattr(ident, "module", None) else "")

    def close(self) -> None:
        """Outputs off first (safety), then everything else; never raises."""
        for st in self.stations.values():
            if st.analyzer is not None:
                try:
                    st.analyzer.output_off()
                    LOG.info("%s: analyzer channel %d output off", st.board.name, st.dut.analyzer_channel)
                except Exception as exc:
                    LOG.error("%s: could not switch analyzer channel %d off: %s", st.board.name,
                              st.dut.analyzer_channel, exc)
                with contextlib.suppress(Exception):
                    st.analyzer.close()
                st.analyzer = None
            for s in st.sources:
                with contextlib.suppress(Exception):
                    s.close()
        if self.simrig is not None:
            with contextlib.suppress(Exception):
                self.simrig.stop()
            self.simrig = None
