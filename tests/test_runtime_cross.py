"""The runtime and a generated model cross-compile warning-free for every supported core."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harness.codegen import examples, generate
from harness.codegen.emulate import CROSS_CC, cross_flags
from harness.ir import Artifact

pytestmark = pytest.mark.skipif(shutil.which(CROSS_CC) is None, reason="arm-none-eabi-gcc missing")


@pytest.mark.parametrize("core", ["cortex-m0plus", "cortex-m4", "cortex-m4f", "cortex-m7"])
@pytest.mark.parametrize("numeric", ["float32", "int8", "uint8", "qmn"])
def test_objects_build_with_werror(core: str, numeric: str, tmp_path: Path) -> None:
    gf = examples.residual(seed=2)
    g = gf if numeric == "float32" else examples.quantize(
        gf, numeric, np.random.default_rng(0).normal(size=(2, 8, 12, 12)).astype(np.float32)
    )
    gen = generate(Artifact(g), tmp_path / "gen", dsp=core != "cortex-m0plus", sparse="auto")
    for src in gen.sources:
        obj = tmp_path / (src.stem + ".o")
        cmd = [CROSS_CC, *cross_flags(core), "-c", str(src), "-o", str(obj)]
        cmd += [f"-I{d}" for d in gen.include_dirs] + [f"-D{k}={v}" for k, v in gen.defines.items()]
        res = subprocess.run(cmd, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert obj.stat().st_size > 0
    if numeric != "float32" and core in ("cortex-m4", "cortex-m7"):
        dis = subprocess.run(
            ["arm-none-eabi-objdump", "-d", str(tmp_path / "nnrt_conv_q.o")], capture_output=True, text=True
        ).stdout
        assert "smlad" in dis and "sxtb16" in dis  # the DSP path is really compiled in
    if numeric == "float32" and core in ("cortex-m4f", "cortex-m7"):
        dis = subprocess.run(
            ["arm-none-eabi-objdump", "-d", str(tmp_path / "nnrt_float.o")], capture_output=True, text=True
        ).stdout
        assert "vldmia" in dis and "vfma.f32" in dis  # the FPU dot-product step is compiled in
    if core == "cortex-m0plus" and numeric != "float32":
        dis = subprocess.run(
            ["arm-none-eabi-objdump", "-d", str(tmp_path / "nnrt_conv_q.o")], capture_output=True, text=True
        ).stdout
        assert "smlad" not in dis
