"""The typed records stages hand on (artifact metadata, footprint, build record) read the files
earlier versions wrote, in the old dict format (tests/fixtures/records, made by
make_records.py there at commit 9714c66), and write them back with the same keys in the same
order; a file with a bad field is an error naming the file and the field."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from harness.build.records import BuildResult, Footprint, OverflowFootprint, load_footprint, parse_footprint
from harness.ir import Artifact
from harness.ir_meta import ArtifactMetadata
from harness.stage_record import RecordError

OLD = Path(__file__).parent / "fixtures" / "records"


def test_old_footprint_json_loads_and_writes_back_byte_for_byte(tmp_path: Path) -> None:
    fp = load_footprint(OLD / "footprint.json")
    assert isinstance(fp, Footprint) and fp.board == "sim-m4" and fp.fits
    fl, ram = fp.flash, fp.ram
    assert fl.vectors + fl.code + fl.weights + fl.rodata_other + fl.data_init == fl.total == fp.berkeley.text
    assert ram.data + ram.bss + ram.arena + ram.stack == ram.total
    assert fp.arena_symbol == "arena" and fp.model_bss_symbols["arena"] == ram.arena
    fp.write(tmp_path / "footprint.json")
    assert (tmp_path / "footprint.json").read_bytes() == (OLD / "footprint.json").read_bytes()


def test_footprint_from_before_ram_code_and_heap_loads(tmp_path: Path) -> None:
    """Files written before 2026-12-01 (commit 625481e) had no ram.code / ram.heap; keys a later
    version adds are kept rather than refused."""
    doc = json.loads((OLD / "footprint.json").read_text())
    del doc["ram"]["code"], doc["ram"]["heap"]
    doc["flash"]["from_a_later_version"] = 7
    (tmp_path / "footprint.json").write_text(json.dumps(doc))
    fp = load_footprint(tmp_path / "footprint.json")
    assert isinstance(fp, Footprint) and fp.ram.code == 0 and fp.ram.heap == 0
    assert fp.flash.model_extra == {"from_a_later_version": 7}
    assert fp.model_dump()["flash"]["from_a_later_version"] == 7


def test_linker_overflow_footprint_loads_as_its_own_kind() -> None:
    fp = load_footprint(OLD / "footprint-overflow.json")
    assert isinstance(fp, OverflowFootprint) and fp.fits is False
    assert fp.linker_overflow == {"FLASH": 1234, "RAM": 10}
    assert fp.flash.total == fp.flash.available + 1234 and fp.flash.weights == 100 and fp.ram.arena == 50
    assert json.dumps(fp.model_dump(), indent=1) + "\n" == (OLD / "footprint-overflow.json").read_text()


def test_bad_footprint_field_names_the_file_and_field(tmp_path: Path) -> None:
    doc = json.loads((OLD / "footprint.json").read_text())
    doc["flash"]["total"] = "large"
    (tmp_path / "footprint.json").write_text(json.dumps(doc))
    with pytest.raises(RecordError) as exc:
        load_footprint(tmp_path / "footprint.json")
    assert str(tmp_path / "footprint.json") in str(exc.value) and "flash.total" in str(exc.value)
    del doc["ram"]
    with pytest.raises(RecordError, match="field 'ram': required but missing"):
        parse_footprint(doc, "builder x")
    (tmp_path / "torn.json").write_text('{"board": "sim-m4", "fl')
    with pytest.raises(RecordError, match="cannot read it as JSON"):
        load_footprint(tmp_path / "torn.json")


def test_old_build_json_loads_and_crosses_a_process_boundary(tmp_path: Path) -> None:
    res = BuildResult.load(OLD / "build.json")
    assert res.compiled and res.status == "built" and res.elf == res.out_dir / "firmware.elf"
    assert res.footprint == load_footprint(OLD / "footprint.json")
    assert res.model_stats is not None and res.model_stats.numeric == "int8"
    assert res.model_stats.weights_bytes == res.footprint.flash.weights
    res.write(tmp_path / "build.json")
    assert (tmp_path / "build.json").read_bytes() == (OLD / "build.json").read_bytes()
    # what the Ray builder task returns (JSON data) and what the station actor gets (a pickle)
    assert BuildResult.model_validate(res.model_dump(mode="json")) == res
    assert pickle.loads(pickle.dumps(res)) == res


def test_old_artifact_json_loads_into_the_typed_metadata(tmp_path: Path) -> None:
    art = Artifact.load(OLD / "artifact")
    md = art.metadata
    assert md.model == "ll" and md.numeric == "int8" and art.graph.numeric == "int8"
    assert md.compression is not None and md.compression.method == "structural" and md.compression.rate == 0.5
    assert md.compression.removed() == md.compression.achieved_rate and md.compression.history
    assert md.dataset_used is not None and md.dataset_used.name == "digits" and not md.dataset_used.synthetic
    assert md.params_total == sum(c.size for c in art.graph.constants.values())
    assert md.input_shape == [1, 28, 28] and md.num_classes == 10
    art.save(tmp_path / "again")  # written back as it was read: same keys, same order, same values
    assert (tmp_path / "again" / "artifact.json").read_text() == (OLD / "artifact" / "artifact.json").read_text()


def test_artifact_from_before_dataset_used_with_unknown_keys_loads(tmp_path: Path) -> None:
    """artifact.json files from before commit b9d6fd7 had no ``dataset_used``."""
    folder = tmp_path / "art"
    shutil.copytree(OLD / "artifact", folder)
    doc = json.loads((folder / "artifact.json").read_text())
    del doc["metadata"]["dataset_used"]
    doc["metadata"]["note_from_elsewhere"] = {"kept": True}
    (folder / "artifact.json").write_text(json.dumps(doc))
    md = Artifact.load(folder).metadata
    assert md.dataset_used is None and md.model_extra == {"note_from_elsewhere": {"kept": True}}
    assert "dataset_used" not in md.to_json() and md.to_json()["note_from_elsewhere"] == {"kept": True}


def test_bad_artifact_metadata_names_the_file_and_field(tmp_path: Path) -> None:
    folder = tmp_path / "art"
    shutil.copytree(OLD / "artifact", folder)
    doc = json.loads((folder / "artifact.json").read_text())
    doc["metadata"]["compression"]["achieved_rate"] = "most"
    (folder / "artifact.json").write_text(json.dumps(doc))
    with pytest.raises(RecordError) as exc:
        Artifact.load(folder)
    msg = str(exc.value)
    assert str(folder / "artifact.json") in msg and "metadata: field 'compression.achieved_rate'" in msg


def test_hand_made_artifact_records_only_what_it_was_given(tmp_path: Path) -> None:
    from harness.codegen import examples

    art = Artifact(examples.lenet(seed=1), ArtifactMetadata(model="lenet", source="test"))
    art.save(tmp_path)
    assert json.loads((tmp_path / "artifact.json").read_text())["metadata"] == {"model": "lenet", "source": "test"}
    assert not Artifact(examples.lenet(seed=1)).metadata.known() and art.metadata.known()


def test_mypy_catches_a_misspelt_field(tmp_path: Path) -> None:
    """The point of the records: a reader's or producer's typo is a type error, not a KeyError
    at the end of a campaign (the project's own mypy configuration and cache, as `make test` runs it)."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    snippet = tmp_path / "typo.py"
    snippet.write_text(
        "from harness.build.records import BuildResult\n"
        "from harness.ir_meta import ArtifactMetadata\n\n\n"
        "def f(b: BuildResult, md: ArtifactMetadata) -> object:\n"
        "    assert b.footprint is not None\n"
        "    return b.footprint.flash.totl, md.acuracy_float, ArtifactMetadata(acuracy_float=1.0)\n"
    )
    res = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(repo / "pyproject.toml"), str(snippet)],
                         cwd=repo, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    assert '"FlashUse" has no attribute "totl"; maybe "total"?' in res.stdout
    assert '"ArtifactMetadata" has no attribute "acuracy_float"; maybe "accuracy_float"?' in res.stdout
    assert 'Unexpected keyword argument "acuracy_float" for "ArtifactMetadata"' in res.stdout


def test_compression_record_mirrors_the_settings_field_for_field() -> None:
    """The record's first fields are the campaign's CompressionSettings in their order, so a
    setting added there must be added here too (else artifact.json would move it behind the
    outcome fields)."""
    from harness.config.campaign import CompressionSettings
    from harness.ir_meta import CompressionRecord

    settings = list(CompressionSettings.model_fields)
    assert list(CompressionRecord.model_fields)[: len(settings)] == settings


def test_report_reads_a_run_with_an_overflow_footprint_and_names_a_bad_one(tmp_path: Path) -> None:
    """A configuration whose Mbed image did not link leaves the linker's overflow record as its
    footprint.json: the report takes what it knows from it; a footprint.json that is not a record
    is a ReportError naming the file."""
    from test_report_helpers import NOT_FIT, build_run

    from harness.report.rundata import ReportError
    from harness.report.sides import from_run

    run = build_run(tmp_path / "run")
    folder = run / "firmware" / NOT_FIT.replace("/", "__")
    folder.mkdir(parents=True)
    shutil.copy(OLD / "footprint-overflow.json", folder / "footprint.json")
    res = next(r for r in from_run(run).configs.values() if r.config_id == NOT_FIT)
    assert res.status == "does-not-fit" and "code_bytes" not in res.values
    assert res.values["flash_bytes"] > 0  # the store's figure (the file's is a lower bound)
    (folder / "footprint.json").write_text(json.dumps({"flash": {"total": 1}}))
    with pytest.raises(ReportError) as exc:
        from_run(run)
    assert str(folder / "footprint.json") in str(exc.value) and "field 'ram': required but missing" in str(exc.value)
