"""`harness measure` through its typer command (`rig doctor`: tests/test_instruments_doctor.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.instruments.cli import app, measure

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps table cells at the runner's 80 columns; the assertions read whole reasons."""
    from rich.console import Console

    import harness.instruments.cli as cli_mod

    monkeypatch.setattr(cli_mod, "console", Console(width=250, force_terminal=False))


def _rig(tmp_path: Path, resource: str, serial: str = "loop://", extra: str = "") -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(f"""name = "bench"
[[duts]]
board = "sim-m4"
serial = "{serial}"
analyzer_channel = 1
trigger_pin = 1
[power_analyzer]
resource = "{resource}"
timeout_ms = 2000
{extra}""")
    return path


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
def test_measure_command_on_the_simulated_rig(tmp_path: Path) -> None:
    import typer
    from firmware_fixtures.fixture_model import fixture_sources

    from harness.build import build_firmware
    from harness.config import load_board

    fw = build_firmware(fixture_sources(rounds=10), load_board("sim-m4"), tmp_path / "fw", cache_dir=tmp_path / "c")
    rig = tmp_path / "simrig.toml"
    rig.write_text('name = "simrig"\n[[duts]]\nboard = "sim-m4"\nprobe = "sim:sim-m4"\n'
                   '[power_analyzer]\nresource = "sim"\nsettle_s = 0\n')
    out = tmp_path / "result.json"
    cli = typer.Typer()
    cli.command()(measure)
    result = runner.invoke(cli, ["--board", "sim-m4", "--rig", str(rig), "--firmware", str(fw.elf), "-n", "3",
                                 "--gap-us", "5000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "mean±std" in result.output
    doc = json.loads(out.read_text())
    assert len(doc["inferences"]) == 3 and doc["units"]["energy_j"] == "J"
    lat = [m["latency_s"] for m in doc["inferences"]]
    assert all(m["cross_check_ok"] for m in doc["inferences"])
    assert max(lat) - min(lat) < 1e-6 and lat[0] > 1e-3  # deterministic firmware
    assert doc["summary"]["energy_j"]["mean"] > 0 and doc["analyzer"]["module"] == "N6781A"


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
def test_measure_times_an_inference_longer_than_the_counter_without_extra_flags(tmp_path: Path) -> None:
    """sim-pico has only a 24-bit SysTick (0.13 s at 133 MHz): a 0.5 s inference wraps it, and
    `harness measure` times it on the analyzer's current waveform by itself, as the campaign does."""
    import typer
    from firmware_fixtures.fixture_model import fixture_sources

    from harness.build import build_firmware
    from harness.config import load_board

    board = load_board("sim-pico")
    fw = build_firmware(fixture_sources(rounds=300), board, tmp_path / "fw", cache_dir=tmp_path / "c")
    out = tmp_path / "long.json"
    cli = typer.Typer()
    cli.command()(measure)
    result = runner.invoke(cli, ["--board", "sim-pico", "--rig", "sim", "--firmware", str(fw.elf), "-n", "2",
                                 "--gap-us", "5000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    lat = [m["latency_s"] for m in doc["inferences"]]
    assert min(lat) > (1 << 24) / board.clock_hz  # longer than the counter can count
    assert all(m["timing_source"] == "pa-trigger" for m in doc["inferences"])
    assert doc["board_simulated"] is True and doc["analyzer"]["simulated"] is True


@pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
def test_measure_on_a_latency_only_rig_reports_power_as_na(tmp_path: Path) -> None:
    import typer
    from firmware_fixtures.fixture_model import fixture_sources

    from harness.build import build_firmware
    from harness.config import load_board

    fw = build_firmware(fixture_sources(rounds=10), load_board("sim-m4"), tmp_path / "fw", cache_dir=tmp_path / "c")
    out = tmp_path / "lat.json"
    cli = typer.Typer()
    cli.command()(measure)
    result = runner.invoke(cli, ["--board", "sim-m4", "--rig", "sim-latency", "--firmware", str(fw.elf), "-n", "2",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "n/a" in result.output
    doc = json.loads(out.read_text())
    assert doc["analyzer"] is None
    assert all(m["timing_source"] == "cycle-counter" and m["latency_s"] > 1e-3 for m in doc["inferences"])


@pytest.mark.parametrize("rig", ["sim-ppk2", "sim-joulescope", "sim-latency"])
def test_doctor_is_green_on_the_simulated_rigs_of_each_monitor(rig: str) -> None:
    result = runner.invoke(app, ["doctor", rig])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    if rig != "sim-latency":
        assert "(SIMULATED)" in result.output  # the monitor said so itself
