"""A campaign over real boards without an Mbed CE tree: each configuration is recorded as failed
with the reason (what to install, the clone command) and the campaign goes on to the next; no
firmware reaches the flasher. (With a tree: tests/test_build_mbed_ce.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from realboard_campaign import env_without_tree, events, run_campaign, write_campaign


@pytest.mark.slow
def test_campaign_without_tree_fails_each_config_with_the_fix_and_goes_on(tmp_path: Path) -> None:
    camp = write_campaign(tmp_path, ["pico", "nano33ble"])
    proc = run_campaign(camp, env_without_tree(HARNESS_MBED_BUILD_DIR=tmp_path / "mbed-build"))
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode != 0  # failed configurations make the run exit non-zero
    ev = events(tmp_path / "results" / "realboards")
    for board in ("pico", "nano33ble"):
        mine = [(stage, msg) for cid, stage, msg in ev if cid == f"ll/none/uint8/{board}"]
        failed = [m for s, m in mine if s == "status" and m.startswith("failed")]
        assert failed, mine
        assert "no Mbed CE tree is configured" in failed[0] and "git clone" in failed[0]
        assert not [s for s, _ in mine if s in ("flash", "measure")], mine  # nothing downstream got an image
    assert not list((tmp_path / "results" / "realboards" / "firmware").rglob("firmware.hex"))
