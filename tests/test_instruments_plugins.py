"""Third-party drivers through entry points: a throwaway package, really installed (pip, into a
folder of its own put on PYTHONPATH), registers a dummy power monitor and `harness rig doctor`
and `harness validate` list it; a rig file may then name it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DUMMY = '''"""A power monitor that exists only to prove third-party drivers are found."""


class DummyMonitor:
    driver_name = "dummy-pm"

    @classmethod
    def from_resource(cls, res):
        raise RuntimeError("the dummy power monitor measures nothing")
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("pkg")
    (src / "dummy_monitor.py").write_text(DUMMY)
    (src / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "harness-dummy-monitor"\nversion = "0.0.1"\n\n'
        '[tool.setuptools]\npy-modules = ["dummy_monitor"]\n\n'
        '[project.entry-points."harness.power_monitors"]\ndummy-pm = "dummy_monitor:DummyMonitor"\n'
        'broken-pm = "dummy_monitor:NoSuchClass"\n')
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(src)], check=True, capture_output=True, text=True)
    return target


def _harness(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "HARNESS_HOME": str(ROOT), "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_rig_doctor_lists_a_third_party_power_monitor(site: Path, tmp_path: Path) -> None:
    rig = tmp_path / "latency.toml"
    rig.write_text('name = "bare"\n[[duts]]\nboard = "sim-m4"\nserial = "loop://"\n'
                   '[power_analyzer]\nkind = "none"\n[[timing]]\nkind = "cycle-counter"\n')
    out = _harness(site, "rig", "doctor", str(rig))
    assert "dummy-pm" in out.stdout and "harness-dummy-monitor" in out.stdout, out.stdout + out.stderr
    # A latency-only rig: no power-monitor row; the doctor still fails it (loop:// holds no firmware
    # to identify), with a message, never a traceback.
    assert "Traceback" not in out.stderr and "power monitor (" not in out.stdout
    broken = next(ln for ln in out.stdout.splitlines() if "broken-pm" in ln)
    assert "failed to load" in broken  # shown as broken, never silently left out
    without = _harness(Path(tmp_path), "rig", "doctor", str(rig))
    assert "dummy-pm" not in without.stdout


def test_validate_lists_it_and_accepts_a_rig_that_names_it(site: Path, tmp_path: Path) -> None:
    rig = tmp_path / "dummy.toml"
    rig.write_text('name = "dummy"\n[[duts]]\nboard = "sim-m4"\nserial = "loop://"\n'
                   '[power_analyzer]\nkind = "dummy-pm"\nresource = "anywhere"\n')
    out = _harness(site, "validate", str(rig))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dummy-pm" in out.stdout
    refused = _harness(Path(tmp_path), "validate", str(rig))  # not installed: the field and what is allowed
    assert refused.returncode == 2
    assert "'dummy-pm' is not an installed power monitor driver" in refused.stdout and "n6705a" in refused.stdout
