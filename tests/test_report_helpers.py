"""A realistic synthetic run written through the store API (shared by the report tests), and
tests of the number formatting the tables rely on."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from harness.report import fmt
from harness.store import ResultStore

BOARDS = {"sim-nano33ble": (1024 * 1024, 256 * 1024), "sim-pico": (2048 * 1024, 264 * 1024)}
# compression id -> (method, rate, target, params_nonzero)
COMPRESSIONS = {
    "structure-99": ("structural", 0.9, 0.99, 6_200),
    "structure-97": ("structural", 0.95, 0.97, 3_100),
    "element-99": ("element", 0.8, 0.99, 12_400),
}
TYPES = ("float32", "uint8")
REPS = 8
TOML = """name = "synthetic"
description = "LeNet on digits, synthetic rows for the report tests"
repetitions = 8
[report]
formats = ["markdown", "latex", "csv", "html"]
plots = true
"""
FAILED = "lenet/element-99/uint8/sim-pico"
NOT_FIT = "lenet/element-99/float32/sim-nano33ble"


def base_latency_s(comp: str, ntype: str, board: str) -> float:
    """Plausible per-inference latency: float slower (M0+ has no FPU), element pruning slower."""
    method, rate, _, _ = COMPRESSIONS[comp]
    t = 0.180 * (1 - rate) * 4 + 0.012
    t *= 3.0 if method == "element" else 1.0
    t *= 1.0 if ntype == "float32" else 0.4
    t *= 2.5 if board == "sim-pico" else 1.0
    return t


def build_run(run_dir: Path, seed: int = 0, slowdown: dict[str, float] | None = None) -> Path:
    """Campaign run folder with 3 compressions x 2 types x 2 boards x 8 repetitions; one config
    failed, one does not fit. ``slowdown`` multiplies the latency (and energy) of chosen configs."""
    rng = np.random.default_rng(seed)
    slowdown = slowdown or {}
    with ResultStore(run_dir) as s:
        s.start_run("synthetic", TOML)
        for comp, (method, rate, target, nz) in COMPRESSIONS.items():
            for ntype in TYPES:
                for board, (fsize, rsize) in BOARDS.items():
                    cid = f"lenet/{comp}/{ntype}/{board}"
                    wbytes = nz * (4 if ntype == "float32" else 1) * (2 if method == "element" else 1)
                    flash = 20_000 + wbytes if cid != NOT_FIT else fsize + 10_000
                    s.upsert_config(
                        cid, model_id="lenet", compression_id=comp, method=method, rate=rate, accuracy_target=target,
                        numeric_type=ntype, board=board, accuracy_float=0.97, accuracy_quant=0.965 if ntype == "uint8" else None,
                        rel_accuracy=target + 0.004, params=61_706, params_nonzero=nz, macs=400_000,
                        flash_bytes=flash, ram_bytes=9_000 + 1_000 * (ntype == "float32"), weights_bytes=wbytes,
                        arena_bytes=6_000, flash_size=fsize, ram_size=rsize, fits=cid != NOT_FIT,
                    )
                    s.set_status(cid, "built")
                    if cid == NOT_FIT:
                        s.set_status(cid, "does-not-fit", f"flash {flash} B > {fsize} B")
                        continue
                    s.add_provenance(cid, firmware_sha256=hashlib.sha256(cid.encode()).hexdigest(), toolchain="arm-none-eabi-gcc 13.2.1",
                                     board=board, instrument_idn=["Keysight Technologies,N6705C,SIM0001,sim-1.0"],
                                     probe_id="sim-0", timing_sources=["gpio", "cycles"])
                    lat0 = base_latency_s(comp, ntype, board) * slowdown.get(cid, 1.0)
                    p0 = 0.080 if board == "sim-pico" else 0.105
                    reps = REPS if cid != FAILED else 3  # the failed one died part-way
                    for rep in range(reps):
                        lat = lat0 * (1 + rng.normal(0, 0.004))
                        pw = p0 * (1 + rng.normal(0, 0.003))
                        base_pw = 0.012
                        s.add_measurement(cid, rep, latency_s=lat, power_w=pw, energy_j=pw * lat,
                                          baseline_power_w=base_pw, energy_net_j=(pw - base_pw) * lat,
                                          timing_source="gpio", supply_v=3.3, sample_interval_s=20.48e-6)
                    if cid == FAILED:
                        s.set_status(cid, "failed", "serial timeout after 3 repetitions (board reset?)")
                    else:
                        s.set_status(cid, "measured")
        s.end_run()
    return run_dir


@pytest.mark.parametrize(("mean", "std", "text"), [
    (44.1512, 0.0312, "44.15 ± 0.03"), (3754.7, 284.921, "3754.70 ± 284.92"), (0.51234, 0.0021, "0.512 ± 0.002"),
    (0.012345, 0.0001, "0.0123 ± 0.0001"), (5.0, math.nan, "5.00"), (math.nan, 1.0, "n/a"),
])
def test_mean_std_format(mean: float, std: float, text: str) -> None:
    assert fmt.mean_std(mean, std) == text


def test_synthetic_run_shape(tmp_path: Path) -> None:
    build_run(tmp_path)
    with ResultStore(tmp_path) as s:
        cfg = s.configs_df()
        m = s.measurements_df()
    assert len(cfg) == 12
    assert dict(cfg["status"].value_counts()) == {"measured": 10, "failed": 1, "does-not-fit": 1}
    assert len(m) == 10 * REPS + 3
