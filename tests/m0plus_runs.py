"""Run a graph's generated firmware on the emulated Cortex-M0+ (sim-pico) and on the host
reference, for the runtime tests of the M0+ kernels."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from harness.build import build_firmware
from harness.codegen import generate
from harness.codegen.io import encode_input, raw_output
from harness.codegen.reference import quantize_tensor, run_raw
from harness.config import load_board
from harness.dut import DutLink
from harness.ir import Artifact, Graph
from harness.sim.board import SimBoard


def device_and_host_outputs(
    g: Graph, x: np.ndarray, sparse: Literal["dense", "csr"], tmp_path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """(outputs on sim-pico, host reference outputs), one row per input; every conv and linear
    layer is checked to use the asked-for weight storage, so the kernels under test really run."""
    gen = generate(Artifact(g), tmp_path / "model", dsp=False, sparse=sparse)
    assert all(r["storage"] == sparse for r in gen.layers if r["op"] in ("conv2d", "linear"))
    fw = build_firmware(gen, "sim-pico", tmp_path / "fw")
    assert fw.elf is not None
    want = np.asarray(run_raw(g, quantize_tensor(g.numeric, g.tensor(g.inputs[0]), x))).reshape(len(x), -1)
    board = SimBoard(load_board("sim-pico"), persist=False)
    board.program(fw.elf)
    board.start()
    got = []
    try:
        with DutLink(board.serial_url, timeout=120) as dut:
            dut.resync()
            for sample in x:
                dut.load_input(encode_input(g, sample))
                dut.infer(1, timeout=600)
                got.append(raw_output(g, dut.results()).reshape(-1))
    finally:
        board.stop()
    return np.array(got), want
