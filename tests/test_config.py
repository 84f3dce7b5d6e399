"""Configuration validation: every shipped file passes; broken files fail with messages that
name the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.config import load_board, load_campaign, load_rig
from harness.config.cli import validate_file
from harness.config.loader import repo_root
from harness.errors import ConfigError

ROOT = repo_root()
SHIPPED = sorted(p for kind in ("boards", "instruments", "campaigns") for p in (ROOT / kind).glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_files_validate(path: Path) -> None:
    assert validate_file(path)


def test_shipped_boards_match_datasheets() -> None:
    m487 = load_board("numaker-pfm-m487")
    assert (m487.mcu, m487.clock_hz, m487.memory.flash_size, m487.memory.ram_size) == (
        "M487JIDAE", 192_000_000, 512 * 1024, 160 * 1024)
    assert (m487.flash.pyocd_target, m487.flash.mbed_target) == ("m487jidae", "NUMAKER_PFM_M487")
    nano = load_board("nano33ble")
    assert nano.program_base == 0x10000 and nano.flash.pyocd_target == "nrf52840"
    pico = load_board("pico")
    assert pico.core == "cortex-m0plus" and not pico.has_dwt and pico.flash.pyocd_target == "rp2040_core0"
    for twin in ("sim-nano33ble", "sim-pico", "sim-numaker-pfm-m487"):
        b = load_board(twin)
        real = load_board(b.twin_of)
        assert b.simulated and b.memory == real.memory and b.clock_hz == real.clock_hz


BOARD = (ROOT / "boards" / "sim-m4.toml").read_text()


def _write(tmp_path: Path, kind: str, name: str, text: str) -> Path:
    folder = tmp_path / kind
    folder.mkdir(exist_ok=True)
    p = folder / name
    p.write_text(text)
    return p


def _problems(exc: ConfigError) -> str:
    return "\n".join(exc.problems)


def test_voltage_above_abs_max_rejected(tmp_path: Path) -> None:
    p = _write(tmp_path, "boards", "hot.toml", BOARD.replace("nominal_v = 3.3", "nominal_v = 4.2"))
    with pytest.raises(ConfigError) as ei:
        load_board(p)
    assert str(p) in str(ei.value)
    assert "supply" in _problems(ei.value) and "abs_max_v" in _problems(ei.value)


def test_missing_field_named(tmp_path: Path) -> None:
    p = _write(tmp_path, "boards", "nomcu.toml", BOARD.replace('mcu = "generic-m4"\n', ""))
    with pytest.raises(ConfigError) as ei:
        load_board(p)
    assert "field 'mcu': required but missing" in _problems(ei.value)


def test_wrong_type_named(tmp_path: Path) -> None:
    p = _write(tmp_path, "boards", "clk.toml", BOARD.replace("clock_hz = 100_000_000", 'clock_hz = "fast"'))
    with pytest.raises(ConfigError) as ei:
        load_board(p)
    msg = _problems(ei.value)
    assert "field 'clock_hz'" in msg and "'fast'" in msg


def test_unknown_core_lists_allowed(tmp_path: Path) -> None:
    p = _write(tmp_path, "boards", "core.toml", BOARD.replace('core = "cortex-m4f"', 'core = "cortex-a53"'))
    with pytest.raises(ConfigError) as ei:
        load_board(p)
    msg = _problems(ei.value)
    assert "field 'core'" in msg and "cortex-m0plus" in msg


def test_unknown_board_lists_known() -> None:
    with pytest.raises(ConfigError) as ei:
        load_board("no-such-board")
    assert "sim-pico" in str(ei.value)


CAMPAIGN = (ROOT / "campaigns" / "lenet-digits.toml").read_text()


def test_zero_repetitions_rejected(tmp_path: Path) -> None:
    p = _write(tmp_path, "campaigns", "n0.toml", CAMPAIGN.replace("repetitions = 8", "repetitions = 0"))
    with pytest.raises(ConfigError) as ei:
        load_campaign(p)
    assert "field 'repetitions'" in _problems(ei.value)


def test_campaign_unknown_board(tmp_path: Path) -> None:
    p = _write(tmp_path, "campaigns", "b.toml", CAMPAIGN.replace('"sim-pico"]', '"sim-nonexistent"]'))
    with pytest.raises(ConfigError) as ei:
        load_campaign(p)
    assert "field 'boards.1'" in _problems(ei.value)


def test_campaign_rate_out_of_range(tmp_path: Path) -> None:
    p = _write(tmp_path, "campaigns", "r.toml", CAMPAIGN.replace("candidate_rates = [0.5, 0.7, 0.8, 0.9, 0.95]",
                                                                 "candidate_rates = [0.5, 1.2]", 1))
    with pytest.raises(ConfigError) as ei:
        load_campaign(p)
    assert "compression.0.candidate_rates" in _problems(ei.value)


RIG = (ROOT / "instruments" / "sim.toml").read_text()


def test_unknown_instrument_backend(tmp_path: Path) -> None:
    p = _write(tmp_path, "instruments", "rig.toml", RIG.replace('backend = "@py"', 'backend = "@gpib"'))
    with pytest.raises(ConfigError) as ei:
        load_rig(p)
    msg = _problems(ei.value)
    assert "field 'power_analyzer.backend'" in msg and "'@py'" in msg


def test_misspelled_field_rejected(tmp_path: Path) -> None:
    p = _write(tmp_path, "boards", "typo.toml", BOARD.replace("clock_hz", "clock_hzz"))
    with pytest.raises(ConfigError) as ei:
        load_board(p)
    assert "clock_hzz" in _problems(ei.value)


def test_cli_validate_reports_without_traceback(tmp_path: Path) -> None:
    bad = _write(tmp_path, "boards", "hot.toml", BOARD.replace("ovp_v = 3.5", "ovp_v = 9.0"))
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "validate", str(bad)],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2
    assert "Traceback" not in out
    assert "hot.toml" in out and "ovp_v" in out


@pytest.mark.parametrize(("kind", "field"), [("board", "supply"), ("rig", "power_analyzer"), ("campaign", "repetitions")])
def test_cli_prints_documented_schema(kind: str, field: str) -> None:
    import json

    proc = subprocess.run([sys.executable, "-m", "harness.cli", "validate", "--schema", kind],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert field in schema["properties"]


def test_train_threads_leave_a_core_per_busy_station(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training gets the cores the measuring stations leave (at least one); a campaign can set
    it, and a nonsense value is refused with the field named."""
    import os

    from harness.campaign.prepare import Preparer

    base = 'name = "t"\nboards = ["sim-m4", "sim-pico"]\n[[models]]\nid = "m"\narch = "lenet-light"\n[[compression]]\nid = "none"\n'
    p = tmp_path / "c.toml"
    p.write_text(base)
    prep = Preparer(load_campaign(p), tmp_path, tmp_path)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert prep.train_threads() == 8
    with prep.station_busy(), prep.station_busy():
        assert prep.train_threads() == 6
    assert prep.train_threads() == 8
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    with prep.station_busy(), prep.station_busy():
        assert prep.train_threads() == 1
    p.write_text("train_threads = 3\n" + base)
    assert Preparer(load_campaign(p), tmp_path, tmp_path).train_threads() == 3
    p.write_text("train_threads = 0\n" + base)
    with pytest.raises(ConfigError, match="train_threads"):
        load_campaign(p)
