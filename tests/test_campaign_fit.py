"""A configuration whose firmware does not fit the board is recorded as "does not fit" (the
paper's dashes) without touching the rig, and the report shows it as '-'."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from harness.campaign.session import run_campaign
from harness.config.loader import repo_root

pytestmark = pytest.mark.slow

CAMPAIGN = """
name = "fit"
rig = "sim"
repetitions = 2
warmup = 0
accuracy_samples = 2
max_retries = 0
quantization = ["uint8"]
boards = ["sim-m4", "sim-small"]

[[models]]
id = "ll"
arch = "lenet-light"
epochs = 1
retrain_epochs = 0

[[compression]]
id = "none"
"""


def test_does_not_fit_is_recorded_and_shown_as_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    for kind in ("boards", "instruments"):
        shutil.copytree(repo_root() / kind, home / kind)
    shutil.copytree(repo_root() / "firmware_templates", home / "firmware_templates")
    (home / "campaigns").mkdir()
    small = (home / "boards" / "sim-m4.toml").read_text()
    small = small.replace('name = "sim-m4"', 'name = "sim-small"').replace("flash_size = 1_048_576", "flash_size = 8_192")
    small = small.replace('pyocd_target = "sim_m4"', 'pyocd_target = "sim_small"')
    (home / "boards" / "sim-small.toml").write_text(small)
    rig = (home / "instruments" / "sim.toml").read_text()  # sim-small takes the M487 twin's channel (one board each)
    rig = rig.replace('board = "sim-numaker-pfm-m487"\nprobe = "sim:sim-numaker-pfm-m487"',
                      'board = "sim-small"\nprobe = "sim:sim-small"')
    (home / "instruments" / "sim.toml").write_text(rig)
    camp = home / "campaigns" / "fit.toml"
    camp.write_text(CAMPAIGN)
    monkeypatch.setenv("HARNESS_HOME", str(home))
    monkeypatch.chdir(tmp_path)

    summary = run_campaign(camp)

    assert (summary.measured, summary.does_not_fit, summary.failed) == (1, 1, 0)
    db = tmp_path / "results" / "fit" / "results.sqlite"
    with sqlite3.connect(db) as con:
        row = con.execute("SELECT status, fits, flash_bytes, flash_size FROM configurations WHERE board = 'sim-small'").fetchone()
        n = con.execute("SELECT COUNT(*) FROM measurements WHERE config_id LIKE '%sim-small'").fetchone()[0]
    status, fits, flash, size = row
    assert status == "does-not-fit" and not fits and flash > size == 8192
    assert n == 0
    table = (tmp_path / "results" / "fit" / "report" / "table3.md").read_text()
    small_row = next(line for line in table.splitlines() if "sim-small" in line)
    assert "| - |" in " ".join(small_row.split())  # cells are padded to the column width
