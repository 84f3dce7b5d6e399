"""The provenance contract: each flashed configuration records whether its board and each of its
instruments were simulated; ``manifest(run)["simulated"]`` says whether any part was, and the
report's captions say "simulated rig (estimates)" exactly then."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report import provenance
from harness.report.rundata import load_run
from harness.store import ResultStore

CID = "ll/none/uint8/b"


def _run(tmp_path: Path, board_sim: bool, inst_sim: bool) -> Path:
    with ResultStore(tmp_path) as s:
        s.start_run("c", 'name = "c"')
        s.upsert_config(CID, board="b", status="measured", numeric_type="uint8", model_id="ll", compression_id="none")
        s.add_measurement(CID, 0, latency_s=0.01, energy_j=1e-3, power_w=0.1)
        s.add_provenance(CID, board="b", instrument_idn="X,N6705B,1,2",
                         extra={"board_simulated": board_sim,
                                "instruments": [{"role": "power monitor", "driver": "n6705a", "idn": "X,N6705B,1,2",
                                                 "simulated": inst_sim}]})
    return tmp_path


@pytest.mark.parametrize(("board_sim", "inst_sim", "expected"),
                         [(True, True, True), (False, True, True), (True, False, True), (False, False, False)])
def test_manifest_simulated_is_any_part(tmp_path: Path, board_sim: bool, inst_sim: bool, expected: bool) -> None:
    man = provenance.manifest(load_run(_run(tmp_path, board_sim, inst_sim)))
    assert man["simulated"] is expected
    assert man["boards"] == [{"name": "b", "simulated": board_sim}]
    assert man["instrument_parts"][0]["simulated"] is inst_sim
    assert ("simulated rig (estimates)" in provenance.to_markdown(man)) is expected


@pytest.mark.parametrize("simulated", [True, False])
def test_report_captions_say_simulated_only_when_it_is(tmp_path: Path, simulated: bool) -> None:
    from harness.report.writer import write_report

    run = _run(tmp_path, simulated, simulated)
    written = write_report(run, formats=["markdown"], plots=False)
    texts = [p.read_text() for p in written["tables"] + written["report"]]
    assert all(("Simulated rig (estimates)" in t) is simulated for t in texts)
