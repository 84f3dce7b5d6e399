"""`harness build` end to end in a subprocess: artifact folder in, firmware folder out; the
second run is served from the cache; a bad model path is a one-line error, not a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.ir import Artifact

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")


def _harness(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_cli_builds_then_hits_cache(tmp_path: Path) -> None:
    from harness.codegen import examples

    graph = examples.quantize(examples.lenet(seed=3), "int8", np.random.default_rng(0).random((4, 1, 28, 28)).astype(np.float32))
    art = Artifact(graph=graph).save(tmp_path / "art")
    cache = tmp_path / "cache"
    first = _harness("build", "--model", str(art), "--board", "sim-m4", "--out", str(tmp_path / "a"), cache=cache)
    assert first.returncode == 0, first.stderr
    assert "sim-m4: built" in first.stdout and "weights" in first.stdout
    manifest = json.loads((tmp_path / "a" / "build.json").read_text())
    assert manifest["cache_hit"] is False and (tmp_path / "a" / "firmware.elf").exists()
    assert json.loads((tmp_path / "a" / "footprint.json").read_text())["fits"] is True
    again = _harness("build", "--model", str(art), "--board", "sim-m4", "--out", str(tmp_path / "b"), cache=cache)
    assert again.returncode == 0, again.stderr
    assert "sim-m4: cached" in again.stdout
    second = json.loads((tmp_path / "b" / "build.json").read_text())
    assert second["cache_hit"] is True and second["firmware_sha256"] == manifest["firmware_sha256"]
    nocache = _harness("build", "--model", str(art), "--board", "sim-m4", "--out", str(tmp_path / "c"), "--no-cache", cache=cache)
    assert "sim-m4: built" in nocache.stdout


def test_cli_bad_model_is_a_clean_error(tmp_path: Path) -> None:
    res = _harness("build", "--model", str(tmp_path / "nope"), "--board", "sim-m4", "--out", str(tmp_path / "o"), cache=tmp_path)
    assert res.returncode != 0
    assert "not an artifact folder" in res.stderr and "Traceback" not in res.stderr
