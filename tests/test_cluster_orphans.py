"""The agent's safety net: a station killed outright (SIGKILL: no handler runs) leaves its board's
reservation 'held' and the analyzer output on; switch_off_orphans finds it and switches the
output off over a fresh connection, confirmed by reading OUTP? back. Real parts: the simulated
N6705A over pyvisa-py/TCP, a real holder process killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.campaign.orphans import switch_off_orphans
from harness.campaign.reserve import BoardReservation
from harness.config import load_rig
from harness.config.board import load_board
from harness.instruments.n6705a import N6705A
from harness.sim.rig import SimRig
from harness.sim.served import write_served_rig


def test_dead_station_leaves_no_output_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_RESERVATIONS", str(tmp_path / "reservations"))
    base = load_rig("sim-a")
    with SimRig.from_rig(base, pyocd_servers=True) as sim:
        rig = load_rig(write_served_rig(base, sim, tmp_path / "served.toml"))  # a rig that is not 'sim'
        assert switch_off_orphans(rig) == []  # nothing held: nothing done
        code = ("import sys, time\nfrom harness.campaign.reserve import BoardReservation\n"
                f"BoardReservation({rig.name!r}, 'sim-m4', {{'campaign': 'lost'}}).acquire()\n"
                "print('held', flush=True)\ntime.sleep(600)")
        holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "HARNESS_RESERVATIONS": str(tmp_path / "reservations")})
        assert holder.stdout.readline().strip() == "held"
        with N6705A.open(sim.visa_resource, 1) as pa:  # the station had switched the board on
            pa.apply_supply(load_board("sim-m4").supply, settle_s=0.0)
            assert pa.output_is_on()
            assert switch_off_orphans(rig) == []  # a live holder is left alone
            assert pa.output_is_on()
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            (msg,) = switch_off_orphans(rig)
            assert "sim-m4" in msg and "switched off" in msg and "'lost'" in msg
            assert not pa.output_is_on()
        assert switch_off_orphans(rig) == []  # released: said once
        BoardReservation(rig.name, "sim-m4", {}).acquire().release()  # free for the next campaign
