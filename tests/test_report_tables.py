"""Report tables checked against an independent computation: the raw rows are read back with
sqlite3 (not through the store or pandas) and reduced with numpy."""

from __future__ import annotations

import csv
import re
import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from test_report_helpers import FAILED, NOT_FIT, REPS, build_run

from harness.errors import HarnessError
from harness.report import load_run, write_report
from harness.report.render import latex_escape, to_latex
from harness.store import ResultStore


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(tmp_path_factory.mktemp("run") / "synthetic-run")


@pytest.fixture(scope="module")
def written(run_dir: Path) -> dict[str, list[Path]]:
    return write_report(run_dir, plots=False)


def raw_stats(db: Path) -> dict[str, dict[str, tuple[float, float, int]]]:
    """config -> metric -> (mean, sample std, n) in ms / mW / mWs, straight from SQLite."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT config_id, latency_s, power_w, energy_j, energy_net_j FROM measurements WHERE warmup = 0")
    vals: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for cid, lat, pw, en, net in rows:
        for k, v in (("latency_ms", lat), ("power_mw", pw), ("energy_mws", en), ("energy_net_mws", net)):
            vals[cid][k].append(v * 1e3)
    con.close()
    return {c: {k: (float(np.mean(v)), float(np.std(v, ddof=1)), len(v)) for k, v in d.items()} for c, d in vals.items()}


def md_rows(path: Path) -> list[list[str]]:
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines[2:]]


def test_report_writes_expected_files(run_dir: Path, written: dict[str, list[Path]]) -> None:
    out = run_dir / "report"
    names = {p.name for p in written["tables"]}
    for stem in ("table3", "footprint", "accuracy", "compare_uint8_vs_float32"):
        assert {f"{stem}.md", f"{stem}.tex", f"{stem}.csv", f"{stem}.html"} <= names
    assert written["report"] == [out / "report.md"]
    assert all(p.is_file() and p.stat().st_size > 0 for ps in written.values() for p in ps)


def test_table3_csv_matches_independent_stats(run_dir: Path, written: dict[str, list[Path]]) -> None:
    expected = raw_stats(run_dir / "results.sqlite")
    with open(run_dir / "report" / "table3.csv", newline="") as fh:
        rows = {r["config_id"]: r for r in csv.DictReader(fh)}
    assert len(rows) == 12
    checked = 0
    for cid, metrics in expected.items():
        for k, (mean, std, n) in metrics.items():
            assert float(rows[cid][f"{k}_mean"]) == pytest.approx(mean, rel=1e-12)
            assert float(rows[cid][f"{k}_std"]) == pytest.approx(std, rel=1e-9)
            assert int(rows[cid]["n"]) == n
            checked += 1
    assert checked == 11 * 4  # every measured config (incl. the partial failed one), four metrics
    assert rows[NOT_FIT]["latency_ms_mean"] == "" and rows[NOT_FIT]["status"] == "does-not-fit"


def test_table3_markdown_cells_and_grouping(run_dir: Path, written: dict[str, list[Path]]) -> None:
    expected = raw_stats(run_dir / "results.sqlite")
    md = (run_dir / "report" / "table3.md").read_text()
    assert "sample standard deviation (ddof = 1)" in md and f"n = {REPS}" in md
    rows = md_rows(run_dir / "report" / "table3.md")
    header = [c.strip() for c in md.splitlines()[2].split("|")[1:-1]]
    assert header[:7] == ["rel. accuracy", "compression", "type", "system", "execution time (ms)", "power (mW)",
                          "energy (mWs)"]
    # rows in paper order: target >99 % before >97 %, group keys printed once
    targets = [r[0] for r in rows if r[0]]
    assert targets == [">99.00%", ">97.00%"]
    assert rows[0][:4] == [">99.00%", "90.00%", "structure, float", "sim-nano33ble"]
    assert rows[1][:4] == ["", "", "", "sim-pico"]
    # every measured cell equals mean ± std formatted from the independent numbers
    con = sqlite3.connect(run_dir / "results.sqlite")
    order = {(c, t, b): cid for cid, c, t, b in con.execute(
        "SELECT config_id, compression_id, numeric_type, board FROM configurations")}
    con.close()
    seen = 0
    ctx: list[str] = ["", "", "", ""]
    for r in rows:
        ctx = [v or ctx[i] for i, v in enumerate(r[:4])]
        comp = {"90.00%": "structure-99", "95.00%": "structure-97", "80.00%": "element-99"}[ctx[1]]
        ntype = "float32" if ctx[2].endswith("float") else "uint8"
        cid = order[(comp, ntype, ctx[3])]
        if cid == NOT_FIT:
            assert r[4:8] == ["-"] * 4
            continue
        if cid == FAILED:
            assert r[4:8] == ["failed"] * 4
            continue
        for i, k in enumerate(("latency_ms", "power_mw", "energy_mws", "energy_net_mws")):
            mean, std, _ = expected[cid][k]
            assert r[4 + i] == f"{mean:.2f} ± {std:.2f}"
            seen += 1
    assert seen == 10 * 4


def test_type_comparison_percentages(run_dir: Path, written: dict[str, list[Path]]) -> None:
    expected = raw_stats(run_dir / "results.sqlite")
    with open(run_dir / "report" / "compare_uint8_vs_float32.csv", newline="") as fh:
        rows = {r["config_id"]: r for r in csv.DictReader(fh)}
    cid = "lenet/structure-97/uint8/sim-pico"
    base = expected["lenet/structure-97/float32/sim-pico"]["latency_ms"][0]
    want = (expected[cid]["latency_ms"][0] / base - 1) * 100
    assert float(rows[cid]["latency_ms_change_pct"]) == pytest.approx(want, rel=1e-9)
    assert want < -50  # uint8 is faster in the synthetic data, so the sign is checked too
    md = md_rows(run_dir / "report" / "compare_uint8_vs_float32.md")
    assert any(r[4] == f"{want:.2f}" for r in md)
    # the float variant did not fit the Nano: its change is a dash, not a number
    nano_elem = [r for r in md if r[2] == "sim-nano33ble" and r[1] == "element, uint8"]
    assert len(nano_elem) == 1 and nano_elem[0][4::2] == ["-", "-", "-"]


def test_latex_booktabs_and_escaping(run_dir: Path, written: dict[str, list[Path]]) -> None:
    tex = (run_dir / "report" / "table3.tex").read_text()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\label{tab:table3}"):
        assert rule in tex
    assert r"\textgreater{}99.00\%" in tex and r"$\pm$" in tex
    assert "±" not in tex
    body = tex.split(r"\toprule")[1]
    assert not re.search(r"(?<!\\)%", body), "unescaped % in LaTeX body"
    assert tex.count(r"\midrule") == 2  # after the header and between the two accuracy targets


def test_latex_escape_specials() -> None:
    s = r"a_b & 5% #1 $x$ {y} ~z ^w <v> \p"
    out = latex_escape(s)
    assert out == (r"a\_b \& 5\% \#1 \$x\$ \{y\} \textasciitilde{}z \textasciicircum{}w "
                   r"\textless{}v\textgreater{} \textbackslash{}p")


def test_board_and_model_names_are_escaped(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.start_run("esc", "name = 'esc'")
        cid = "res_net#2/structure-99/uint8/nucleo_f401re"
        s.upsert_config(cid, model_id="res_net#2", compression_id="structure-99", method="structural", rate=0.9,
                        numeric_type="uint8", board="nucleo_f401re", status="measured")
        s.upsert_config("m&m/none/float32/b", model_id="m&m", method="none", numeric_type="float32", board="b<1>")
        for rep in range(3):
            s.add_measurement(cid, rep, latency_s=0.01 * (rep + 1), power_w=0.1, energy_j=0.001 * (rep + 1))
    run = load_run(tmp_path)
    tex = to_latex(run.table3())
    assert r"nucleo\_f401re" in tex and r"res\_net\#2" in tex and r"m\&m" in tex and r"b\textless{}1\textgreater{}" in tex
    html = write_report(tmp_path, formats=["html"], plots=False)["tables"][0].read_text()
    assert "b&lt;1&gt;" in html and "m&amp;m" in html


def test_power_derived_from_energy_when_missing(tmp_path: Path) -> None:
    with ResultStore(tmp_path) as s:
        s.upsert_config("m/c/float32/b", model_id="m", board="b", status="measured")
        for rep, (lat, en) in enumerate([(0.010, 0.0010), (0.012, 0.0013), (0.011, 0.0011)]):
            s.add_measurement("m/c/float32/b", rep, latency_s=lat, energy_j=en)
    summ = load_run(tmp_path).summary().iloc[0]
    p = np.array([0.0010 / 0.010, 0.0013 / 0.012, 0.0011 / 0.011]) * 1e3
    assert summ["power_mw_mean"] == pytest.approx(p.mean()) and summ["power_mw_std"] == pytest.approx(p.std(ddof=1))


def test_rundata_api(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert run.name == "synthetic"
    summ = run.summary()
    assert len(summ) == 12 and dict(zip(summ["config_id"], summ["n"], strict=True))[FAILED] == 3
    t = run.table3()
    assert t.columns[4] == "execution time (ms)" and len(t.rows) == 12
    assert len(run.footprint().rows) == 12 and len(run.accuracy().rows) == 12


def test_footprint_and_accuracy_tables(run_dir: Path, written: dict[str, list[Path]]) -> None:
    fp = md_rows(run_dir / "report" / "footprint.md")
    no = [r for r in fp if r[-1] == "no"]
    assert len(no) == 1 and float(no[0][6].rstrip("%")) > 100  # flash use over 100 %
    con = sqlite3.connect(run_dir / "results.sqlite")
    flash = dict(con.execute("SELECT config_id, flash_bytes FROM configurations").fetchall())
    con.close()
    with open(run_dir / "report" / "footprint.csv", newline="") as fh:
        assert {r["config_id"]: int(float(r["flash_bytes"])) for r in csv.DictReader(fh)} == flash
    acc = (run_dir / "report" / "accuracy.md").read_text()
    assert "99.40%" in acc and "97.40%" in acc


def test_report_md_has_sections_and_provenance(run_dir: Path, written: dict[str, list[Path]]) -> None:
    md = (run_dir / "report" / "report.md").read_text()
    for part in ("# Benchmark report: synthetic", "## Execution time, power and energy per inference",
                 "## Memory footprint", "## Provenance", "N6705C", "arm-none-eabi-gcc 13.2.1",
                 f"`{FAILED}`: failed — serial timeout"):
        assert part in md
    assert "## Figures" not in md  # plots=False


@pytest.mark.parametrize("case", ["missing", "no-db", "empty"])
def test_load_run_errors(tmp_path: Path, case: str) -> None:
    target = tmp_path / "run"
    if case != "missing":
        target.mkdir()
    if case == "empty":
        ResultStore(target).close()
    msg = {"missing": "does not exist", "no-db": "no results.sqlite", "empty": "no configurations"}[case]
    with pytest.raises(HarnessError, match=msg):
        load_run(target)


def test_campaign_report_settings_are_defaults(tmp_path: Path) -> None:
    toml = 'name = "c"\n[report]\nformats = ["csv"]\nplots = false\nbaseline_run = "no-such-run"\n'
    with ResultStore(tmp_path / "run") as s:
        s.start_run("c", toml)
        s.upsert_config("m/none/float32/b", model_id="m", method="none", numeric_type="float32", board="b",
                        status="measured")
        for rep in range(2):
            s.add_measurement("m/none/float32/b", rep, latency_s=0.01 + rep * 1e-4, power_w=0.1, energy_j=1e-3)
    written = write_report(tmp_path / "run")
    assert {p.suffix for p in written["tables"]} == {".csv"} and written["plots"] == []
    md = (tmp_path / "run" / "report" / "report.md").read_text()
    assert "`no-such-run`" in md and "comparison skipped" in md
    # explicit arguments override the campaign file
    written = write_report(tmp_path / "run", formats=["latex"], out_dir=tmp_path / "o")
    assert {p.suffix for p in written["tables"]} == {".tex"}
