"""build_firmware on a real model: harness.codegen output for a small quantized LeNet, built for
an M4 board and an M0+ board, and the M4 image's output checked on QEMU against the codegen's
bit-exact reference executor."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from firmware_fixtures.qemu import HAVE_QEMU, qemu_board

from harness.build import build_firmware
from harness.config import load_board
from harness.dut import DutLink
from harness.ir import Artifact
from harness.ir_meta import ArtifactMetadata

pytestmark = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")


@pytest.fixture(scope="module")
def lenet_artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Artifact, Path]:
    from harness.codegen import examples

    rng = np.random.default_rng(4)
    graph = examples.quantize(examples.lenet(seed=2), "uint8", rng.random((8, 1, 28, 28)).astype(np.float32))
    art = Artifact(graph=graph, metadata=ArtifactMetadata(model="lenet-light", source="test"))
    return art, art.save(tmp_path_factory.mktemp("artifact"))


@pytest.fixture(scope="module")
def lenet_m4(lenet_artifact, tmp_path_factory: pytest.TempPathFactory):
    _, folder = lenet_artifact
    return build_firmware(folder, load_board("sim-m4"), tmp_path_factory.mktemp("lenet-m4"))


def test_generated_model_builds_with_weights_in_flash(lenet_artifact, lenet_m4) -> None:
    art, _ = lenet_artifact
    r = lenet_m4
    assert r.model_hash == art.content_hash() and r.generated_dir is not None
    assert (r.generated_dir / "model.h").exists()
    fp, stats = r.footprint, r.model_stats
    # The linked image's weight symbols add up to what the generator says it emitted, and the
    # arena symbol has the planned size: attribution by symbol, not by guess.
    assert stats.numeric == "uint8" and stats.macs > 0 and stats.weights_bytes > 0
    assert fp.flash.weights == stats.weights_bytes
    assert fp.arena_symbol == "arena" and fp.ram.arena == stats.arena_bytes
    assert 0 < fp.flash.model_const < fp.flash.rodata_other
    assert 0 < fp.flash.model_code < fp.flash.code
    assert fp.fits


def test_generated_model_builds_for_m0plus_without_dsp(lenet_artifact, tmp_path: Path) -> None:
    _, folder = lenet_artifact
    r = build_firmware(folder, load_board("sim-pico"), tmp_path / "pico")
    assert r.compiled and r.footprint.fits
    assert "NNRT_USE_DSP" not in (tmp_path / "pico" / "model").joinpath("model.h").read_text()


@pytest.mark.skipif(not HAVE_QEMU, reason="needs qemu-system-arm")
def test_generated_model_output_matches_reference_on_qemu(lenet_artifact, lenet_m4) -> None:
    from harness.codegen.io import encode_input
    from harness.codegen.reference import run_raw

    art, _ = lenet_artifact
    x = np.random.default_rng(11).random((1, 28, 28)).astype(np.float32)
    inp = encode_input(art.graph, x)
    expected = run_raw(art.graph, np.frombuffer(inp, dtype=np.uint8).reshape(1, 1, 28, 28)).astype(np.uint8).tobytes()
    with qemu_board(lenet_m4.elf) as url, DutLink(url, timeout=10) as dut:
        dut.resync()
        info = dut.identify()
        assert info.model_hash == art.content_hash() and info.numeric == "uint8"
        assert info.arena_bytes == lenet_m4.footprint.ram.arena
        dut.load_input(inp)
        res = dut.infer(2, warmup=1, gap_us=50)
        assert res.checksums == [zlib.crc32(expected)] * 2
        assert dut.results() == expected
