"""The regression gate end to end on the simulated rig (real arm-none-eabi-gcc builds, real
firmware on the emulated core, pyOCD flashing, the simulated N6705A over pyvisa-py):

- the commands of docs/ci.md's GitHub Actions and GitLab CI jobs, run as written: the same
  firmware measured twice is unchanged (exit 0), JUnit valid against the XSD;
- -O0 instead of -O2 and portable instead of DSP kernels: latency and energy regressions (exit 1);
- a larger model: a flash regression shown in bytes;
- a build that fails on the current side: a regression even with --allow-missing;
- a [[build]] axis gives distinct configurations with different latency and build ids."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import xmlschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CID = "ll/none/uint8/sim-m4"

pytestmark = pytest.mark.slow


def env() -> dict[str, str]:
    return {**os.environ, "HARNESS_HOME": str(ROOT), "PYTHONPATH": str(ROOT),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def sh(workdir: Path, cmd: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """A documented command line, as a CI runner's shell runs it (harness from this venv)."""
    return subprocess.run(["bash", "-c", cmd], cwd=workdir, env={**env(), "HARNESS_RIG": "sim"},
                          capture_output=True, text=True, timeout=timeout)


def harness(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=workdir, env=env(),
                          capture_output=True, text=True, timeout=900)


def ci_commands() -> dict[str, list[str]]:
    """The `harness ...` lines of the two CI jobs in docs/ci.md, in order."""
    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    gh = next(b for b in blocks if "jobs" in b)
    gl = next(b for b in blocks if "firmware-performance" in b)
    gh_lines = [ln.strip() for s in gh["jobs"]["perf"]["steps"] for ln in str(s.get("run", "")).splitlines()]
    return {"github": [ln for ln in gh_lines if ln.startswith("harness ")],
            "gitlab": [ln for ln in gl["firmware-performance"]["script"] if ln.startswith("harness ")],
            "bless": re.findall(r"<!-- bless:.*?-->\n```sh\n(.*?)```", text, re.S)[0].strip().splitlines()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A firmware repository as in docs/ci.md: ci/perf.toml, baselines/main.json blessed by the
    documented commands. One folder for the module so runs share the compress/build caches."""
    work = tmp_path_factory.mktemp("fwrepo")
    (work / "ci").mkdir()
    shutil.copy(DATA / "gate-campaign.toml", work / "ci" / "perf.toml")
    cmds = ci_commands()
    assert len(cmds["bless"]) == 2, cmds["bless"]
    for cmd in cmds["bless"]:
        r = sh(work, cmd)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    assert (work / "baselines" / "main.json").is_file()
    return work


def _compare_json(work: Path, *args: str) -> tuple[int, dict]:
    out = work / "results" / f"cmp-{abs(hash(args))}.json"
    r = harness(work, "compare", *args, "--json", str(out))
    assert r.returncode in (0, 1), f"{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr
    return r.returncode, json.loads(out.read_text())


def _gating(doc: dict) -> set[tuple[str, str]]:
    return {(c["config"], c["metric"]) for c in doc["changes"] if c["gating"]}


def test_documented_ci_jobs_pass_on_unchanged_firmware(repo: Path) -> None:
    cmds = ci_commands()
    assert cmds["github"] == cmds["gitlab"] and len(cmds["github"]) == 2, cmds
    for cmd in cmds["github"]:
        r = sh(repo, cmd)
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    xmlschema.XMLSchema(DATA / "junit.xsd").validate(str(repo / "results" / "gate.xml"))
    md = (repo / "results" / "gate.md").read_text()
    assert md.startswith("## Regression check: PASS")
    # the same firmware image (content-addressed build) on both sides, every metric unchanged
    rc, doc = _compare_json(repo, "main", "results/pr")
    assert rc == 0
    # one argument: the baseline named in the campaign's [gate] table
    assert harness(repo, "compare", "results/pr").returncode == 0
    status = next(c for c in doc["changes"] if c["metric"] == "status")
    assert "same firmware image" in status["detail"]
    metrics = {c["metric"]: c for c in doc["changes"] if c["config"] == CID}
    assert {"latency_s", "energy_j", "cycles", "flash_bytes", "ram_bytes", "text_bytes", "rodata_bytes"} <= set(metrics)
    assert metrics["cycles"]["delta"] == "+0 cycles" and metrics["flash_bytes"]["delta"] == "+0 B"


@pytest.mark.parametrize(("option", "changed"), [("opt_level=O0", "opt_level"), ("dsp=false", "dsp")])
def test_slower_build_options_regress_latency_and_energy(repo: Path, option: str, changed: str) -> None:
    run_dir = f"results/{changed}"
    r = harness(repo, "run", "ci/perf.toml", "--run-dir", run_dir, "--no-report", "--build-option", option)
    assert r.returncode == 0, r.stdout + r.stderr
    rc, doc = _compare_json(repo, "main", run_dir)
    assert rc == 1
    assert {(CID, "latency_s"), (CID, "energy_j"), (CID, "cycles")} <= _gating(doc)
    lat = next(c for c in doc["changes"] if c["metric"] == "latency_s")
    assert lat["rel_change"] > 0.2 and lat["p_value"] < 0.01
    assert any(f"build options changed: {changed}" in w for w in doc["warnings"])


def test_larger_model_is_a_flash_regression_in_bytes(repo: Path) -> None:
    big = repo / "ci" / "perf-big.toml"  # the same model on larger inputs: a bigger classifier layer
    big.write_text((repo / "ci" / "perf.toml").read_text().replace("resize = 28", "resize = 36"))
    r = harness(repo, "run", str(big), "--run-dir", "results/big", "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    rc, doc = _compare_json(repo, "main", "results/big")
    assert rc == 1 and (CID, "flash_bytes") in _gating(doc) and (CID, "status") not in _gating(doc)
    fl = next(c for c in doc["changes"] if c["metric"] == "flash_bytes")

    def flash(run: str) -> int:
        with sqlite3.connect(repo / run / "results.sqlite") as con:
            return int(con.execute("SELECT flash_bytes FROM configurations").fetchone()[0])

    grew = flash("results/big") - flash("results/main")
    assert grew > 0 and fl["delta"] == f"+{grew:,} B"
    md = harness(repo, "compare", "main", "results/big", "--print-markdown").stdout
    regressions = md.split("### Regressions")[1].split("###")[0]
    assert f"+{grew:,} B" in regressions and "flash_bytes" in regressions


def test_failed_build_is_a_regression_even_with_allow_missing(repo: Path) -> None:
    r = harness(repo, "run", "ci/perf.toml", "--run-dir", "results/broken", "--no-report",
                "--build-option", 'extra_cflags=["-fno-such-option-in-gcc"]')
    assert r.returncode == 1, r.stdout + r.stderr  # the campaign records the failure and goes on
    rc, doc = _compare_json(repo, "main", "results/broken", "--allow-missing")
    assert rc == 1 and _gating(doc) == {(CID, "status")}
    status = next(c for c in doc["changes"] if c["metric"] == "status")
    assert status["verdict"] == "failed" and "no-such-option" in status["detail"]


def test_build_axis_gives_distinct_configurations(repo: Path) -> None:
    r = harness(repo, "run", str(DATA / "build-axis-campaign.toml"), "--run-dir", "results/axis", "--no-report")
    assert r.returncode == 0, r.stdout + r.stderr
    with sqlite3.connect(repo / "results" / "axis" / "results.sqlite") as con:
        lat = dict(con.execute("SELECT config_id, AVG(latency_s) FROM measurements GROUP BY config_id").fetchall())
        builds = dict(con.execute("SELECT config_id, build_id FROM provenance").fetchall())
        extra = {c: json.loads(e) for c, e in con.execute("SELECT config_id, extra_json FROM configurations")}
    ids = {f"{CID}/{v}" for v in ("o2", "o0", "nodsp")}
    assert set(lat) == ids and len(set(builds.values())) == 3
    assert lat[f"{CID}/o0"] > 1.2 * lat[f"{CID}/o2"] and lat[f"{CID}/nodsp"] > 1.2 * lat[f"{CID}/o2"]
    assert extra[f"{CID}/o0"]["build_options"]["opt_level"] == "O0" and extra[f"{CID}/nodsp"]["build_options"]["dsp"] is False
    rep = harness(repo, "report", "results/axis", "--no-plots", "--format", "markdown")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    table3 = (repo / "results" / "axis" / "report" / "table3.md").read_text()
    assert all(f"sim-m4 [{v}]" in table3 for v in ("o2", "o0", "nodsp"))  # reports tell the builds apart
    # identity includes the build variant: nothing here matches the baseline's default build
    r = harness(repo, "compare", "main", "results/axis", "--allow-missing")
    assert r.returncode == 2 and "no configuration" in r.stderr and f"{CID}/o0" in " ".join(r.stderr.split())


def test_bad_build_option_is_a_usage_error(repo: Path) -> None:
    r = harness(repo, "run", "ci/perf.toml", "--build-option", "opt_level=O9")
    assert r.returncode == 2 and "opt_level" in r.stderr and "Traceback" not in r.stderr
    r = harness(repo, "run", "ci/perf.toml", "--build-option", "speed=fast")
    assert r.returncode == 2 and "KEY=VALUE" in " ".join(r.stderr.split())
