"""Figures and the `harness report` command: real PNG/SVG files with drawn content, the limits
of Fig. 6 present, and clean errors for folders that are not runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_report_helpers import build_run

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEMS = ("latency_vs_compression", "energy_vs_compression", "accuracy_vs_compression", "memory_vs_model_size")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = build_run(tmp_path_factory.mktemp("plots") / "run")
    res = _cli("report", str(run))
    assert res.returncode == 0, res.stderr
    return run


def test_plots_are_real_images(reported: Path) -> None:
    import matplotlib.image as mpimg

    plots = reported / "report" / "plots"
    for stem in STEMS:
        png, svg = plots / f"{stem}.png", plots / f"{stem}.svg"
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5_000
        img = mpimg.imread(png)
        assert img.shape[0] > 200 and img.shape[1] > 300
        assert np.std(img[..., :3]) > 0.05, f"{png.name} looks blank"
        text = svg.read_text()
        assert text.lstrip().startswith("<?xml") and "<svg" in text and "</svg>" in text


def test_memory_plot_draws_board_limits(reported: Path) -> None:
    svg = (reported / "report" / "plots" / "memory_vs_model_size.svg").read_text()
    for label in ("sim-nano33ble limit", "sim-pico limit", "does not fit"):
        assert label in svg


def test_latency_plot_has_a_panel_per_board(reported: Path) -> None:
    svg = (reported / "report" / "plots" / "latency_vs_compression.svg").read_text()
    assert "sim-nano33ble" in svg and "sim-pico" in svg


def test_report_md_links_existing_plots(reported: Path) -> None:
    md = (reported / "report" / "report.md").read_text()
    for stem in STEMS:
        assert f"](plots/{stem}.png)" in md
    assert (reported / "report" / "provenance.json").is_file()


def test_cli_format_selection_and_no_plots(tmp_path: Path) -> None:
    run = build_run(tmp_path / "run")
    res = _cli("report", str(run), "--format", "latex", "--format", "csv", "--no-plots", "--out", str(tmp_path / "o"))
    assert res.returncode == 0, res.stderr
    out = tmp_path / "o"
    assert (out / "table3.tex").is_file() and (out / "table3.csv").is_file()
    assert not (out / "table3.html").exists() and not (out / "plots").exists()
    assert (out / "report.md").is_file()
    bad = _cli("report", str(run), "--format", "docx")
    assert bad.returncode == 2 and "unknown format" in " ".join(bad.stderr.split())


@pytest.mark.parametrize("make", ["none", "dir"])
def test_cli_report_on_non_run(tmp_path: Path, make: str) -> None:
    target = tmp_path / "r"
    if make == "dir":
        target.mkdir()
    res = _cli("report", str(target))
    assert res.returncode == 2
    err = " ".join(res.stderr.split())  # rich wraps long messages
    assert ("does not exist" if make == "none" else "has no results.sqlite") in err
    assert "Traceback" not in res.stderr
