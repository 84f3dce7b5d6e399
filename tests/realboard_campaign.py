"""A one-model campaign over real boards on a rig nobody can reach (shared by the campaign tests
with and without an Mbed CE tree): the analyzer address refuses connections, the probe and the
serial port do not exist."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any


def write_campaign(folder: Path, boards: list[str], mbed_os: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    duts = "".join(
        f'[[duts]]\nboard = "{b}"\nprobe = "E66141040000{i:04d}"\nserial = "/dev/ttyACM9{i}"\n'
        f"analyzer_channel = {i + 1}\ntrigger_pin = {i + 1}\n"
        for i, b in enumerate(boards)
    )
    tree = f'mbed_os = "{mbed_os}"\n' if mbed_os else ""
    (folder / "rig.toml").write_text(
        f'name = "unreachable"\n{tree}{duts}[power_analyzer]\nkind = "n6705a"\n'
        'resource = "TCPIP0::127.0.0.1::9::SOCKET"\ntimeout_ms = 2000\n'
    )
    (folder / "campaign.toml").write_text(
        f'name = "realboards"\nrig = "{folder / "rig.toml"}"\noutput_dir = "{folder / "results"}"\n'
        "repetitions = 2\nwarmup = 0\naccuracy_samples = 0\nmax_retries = 0\ninference_timeout_s = 10\n"
        f'quantization = ["uint8"]\nboards = {boards!r}\n'.replace("'", '"')
        + '[dataset]\nname = "digits"\nresize = 28\n[[models]]\nid = "ll"\narch = "lenet-light"\nepochs = 1\n'
        'retrain_epochs = 0\n[[compression]]\nid = "none"\n'
    )
    return folder / "campaign.toml"


def run_campaign(campaign: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(campaign)], capture_output=True, text=True,
                          env={**env, "COLUMNS": "200"}, timeout=1500)  # fmt: skip


def events(run_dir: Path) -> list[tuple[str, str, str]]:
    """(config_id, stage, message) of every event the store recorded."""
    with sqlite3.connect(run_dir / "results.sqlite") as db:
        return [tuple(r) for r in db.execute("select config_id, stage, message from events order by event_id")]


def env_without_tree(**extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MBED_OS_PATH"}
    return {**env, **{k: str(v) for k, v in extra.items()}}
