"""The rig PC's safety net for stations that die without closing their bench (a SIGKILLed or
force-killed Ray worker cannot run any handler): the agent finds boards whose reservation was
left 'held' by a dead process and switches their power-monitor outputs off, confirmed, over a
fresh connection. A simulated stand-in monitor ran inside the dead station and died with it:
nothing to switch off."""

from __future__ import annotations

import contextlib
import logging

from harness.campaign.reserve import BoardReservation
from harness.config.rig import RigConfig
from harness.instruments import registry
from harness.instruments.protocols import MonitorResource

LOG = logging.getLogger(__name__)


def switch_off_orphans(rig: RigConfig) -> list[str]:
    """Boards of ``rig`` whose dead station's outputs were switched off now (messages)."""
    pa = rig.power_analyzer
    done: list[str] = []
    for dut in rig.duts:
        res = BoardReservation(rig.name, dut.board, {"campaign": "harness agent (safety)"})
        last = res.take_orphan()
        if last is None:
            continue
        note = f"station pid {last.get('pid')} of campaign {last.get('campaign')!r} ended without closing"
        try:
            if pa.kind == "none" or pa.started_by_station:
                res.release(f"{note}; its simulated parts ended with it")
                continue
            driver = registry.load(registry.POWER_MONITORS, pa.kind)
            mon = driver.from_resource(MonitorResource(pa.kind, pa.resource, dut.analyzer_channel, pa.timeout_ms,
                                                       {"backend": pa.backend, **pa.options}))
            try:
                mon.output_off()
            finally:
                with contextlib.suppress(Exception):
                    mon.close()
            msg = f"{dut.board}: {note}; power monitor output {dut.analyzer_channel} switched off (confirmed)"
            LOG.warning(msg)
            done.append(msg)
            res.release(f"{note}; output switched off by harness agent")
        except Exception as exc:  # left 'held': tried again at the next round, and said loudly
            LOG.error("%s: %s; could NOT switch its output off: %s", dut.board, note, exc)
            res.unlock_keep_state()
    return done
