"""A rig file for a simulated rig served by another process (`harness sim serve --rig R
--write-rig OUT`): every 'sim' of R replaced by the served endpoint (the UART's pyserial URL,
the probe's pyOCD ``remote:`` server, the simulated N6705A's VISA address). A campaign given OUT
drives the served boards exactly as it drives a real rig, through configuration only."""

from __future__ import annotations

import json
import os
from pathlib import Path

from harness.config.rig import RigConfig
from harness.sim.rig import SimRig


def _q(v: object) -> str:
    return json.dumps(v)  # a JSON string or number is a valid TOML basic string / number


def served_rig_toml(rig: RigConfig, sim_rig: SimRig) -> str:
    eps = sim_rig.endpoints()
    pa = rig.power_analyzer
    lines = [f"# written by `harness sim serve --rig {rig.name}` (pid {os.getpid()}); valid while it runs",
             f"name = {_q(rig.name + '-served')}",
             f"description = {_q('Simulated rig ' + rig.name + ' served by another process (SIMULATED parts)')}",
             f"cross_check_tolerance = {rig.cross_check_tolerance!r}", ""]
    for d in rig.duts:
        ep = eps.get(d.board)
        if ep is None:
            raise ValueError(f"board {d.board} of rig {rig.name} is not served")
        if not ep["pyocd_remote"]:
            raise ValueError("serve the probes too (--pyocd-servers) to write a rig file for them")
        lines += ["[[duts]]", f"board = {_q(d.board)}", f"probe = {_q(ep['pyocd_remote'])}",
                  f"serial = {_q(ep['serial'])}", f"analyzer_channel = {d.analyzer_channel}",
                  f"trigger_pin = {d.trigger_pin}", ""]
    resource = sim_rig.visa_resource if pa.resource == "sim" else pa.resource
    if pa.kind != "none" and resource is None:
        raise ValueError("the simulated power analyzer is not running (--analyzer)")
    lines += ["[power_analyzer]", f"kind = {_q(pa.kind)}"]
    if pa.kind != "none":
        lines += [f"resource = {_q(resource)}", f"backend = {_q(pa.backend)}",
                  f"sample_interval_s = {pa.sample_interval_s!r}", f"settle_s = {pa.settle_s!r}"]
    lines.append("")
    for t in rig.timing:
        lines += ["[[timing]]", f"kind = {_q(t.kind)}"]
        for key in ("resource", "dialect", "channel"):
            value = getattr(t, key, None)
            if value is not None:
                lines.append(f"{key} = {_q(value)}")
        lines.append("")
    return "\n".join(lines)


def write_served_rig(rig: RigConfig, sim_rig: SimRig, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(served_rig_toml(rig, sim_rig), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file
    return path
