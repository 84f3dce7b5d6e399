"""The compression stage as one call: train (or load) -> prune -> export -> quantize -> artifact.

``compress(request, out_dir)`` writes into ``out_dir``: artifact.json + weights.npz
(harness.ir.Artifact), model.onnx (the float, pruned model) and samples.npz (``x`` float32
N x C x H x W held-out test images, ``y`` labels) for on-device accuracy checks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from harness.config.campaign import CompressionSettings, DatasetSettings, ModelSettings, NumericType
from harness.ir import Artifact, Graph

Progress = Callable[[str, float], None]


class CompressRequest(BaseModel):
    """Everything one compression run depends on (campaign settings plus CLI-only extras)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: ModelSettings
    compression: CompressionSettings = CompressionSettings(id="none")
    numeric: NumericType = "float32"
    dataset: DatasetSettings = DatasetSettings()
    seed: int = 0
    prune_layers: list[str] = Field(default_factory=list, description="Seed-style: layers to remove filters from")
    prune_channels: list[int] = Field(default_factory=list, description="Filters removed per prune_layers entry")
    sensitivity: float | None = Field(None, description="Han et al. threshold (x std) for linear layers")
    max_flash: int | None = Field(None, description="Resource-aware mode: weight bytes budget")
    max_ram: int | None = Field(None, description="Resource-aware mode: peak activation bytes budget")
    max_macs: int | None = Field(None, description="Resource-aware mode: MAC budget")
    qat_epochs: float = Field(0, ge=0, description="Quantization-aware fine-tuning epochs (0 = PTQ only)")
    calibration_samples: int = Field(256, gt=0)
    test_samples: int = Field(64, gt=0, description="Held-out images saved to samples.npz (on-device accuracy)")
    cache_dir: Path | None = None
    threads: int = 2
    module: Any = Field(None, description="A user nn.Module to use instead of the zoo (trained for model.epochs)")


def compress_from_campaign(
    model: ModelSettings, comp: CompressionSettings, numeric: str, dataset: DatasetSettings, seed: int, out_dir: Path,
    progress: Progress | None = None, cache_dir: Path | None = None, test_samples: int = 64, threads: int = 2,
) -> Artifact:  # fmt: skip
    """What the campaign runner calls for one (model, compression, numeric) cell. Pass the same
    ``cache_dir`` for all cells of a run (default: out_dir.parent / "_cache") so they share the
    trained baseline and pruning runs."""
    req = CompressRequest(
        model=model, compression=comp, numeric=numeric, dataset=dataset, seed=seed, cache_dir=cache_dir,
        prune_layers=comp.prune_layers, prune_channels=comp.prune_channels, sensitivity=comp.sensitivity,
        max_flash=comp.max_flash_bytes, max_ram=comp.max_ram_bytes, max_macs=comp.max_macs, qat_epochs=comp.qat_epochs,
        test_samples=max(1, test_samples), threads=threads,
    )
    return compress(req, Path(out_dir), progress)


def compress(req: CompressRequest, out_dir: Path, progress: Progress | None = None) -> Artifact:
    """Run the stage and write the artifact folder; returns the saved Artifact."""
    from harness.compress import pipeline

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    cache_dir = req.cache_dir or out_dir.parent / "_cache"
    run = pipeline.Pipeline(req, cache_dir, progress)
    graph, float_model, info = run.execute()
    art = Artifact(graph=graph, metadata=info.model_copy(update={"compress_seconds": round(time.perf_counter() - t0, 3)}))
    art.save(out_dir)
    _write_extras(req, run, float_model, out_dir)
    return art


def _write_extras(req: CompressRequest, run: Any, float_model: Any, out_dir: Path) -> None:
    from harness.compress.onnx_import import export_onnx

    x, y = run.data.x_test[: req.test_samples], run.data.y_test[: req.test_samples]
    np.savez(out_dir / "samples.npz", x=x.astype(np.float32), y=y.astype(np.int64))
    if float_model is None:
        shutil.copyfile(req.model.arch, out_dir / "model.onnx")
    else:
        export_onnx(float_model, run.data.input_shape, out_dir / "model.onnx")


def graph_accuracy(graph: Graph, x: np.ndarray, y: np.ndarray) -> tuple[float, str]:
    """Accuracy of the artifact graph in its numeric mode: quantized graphs run on the codegen's
    integer reference when importable, else the torch fake-quant simulation; float graphs run on
    torch. The returned name says which."""
    from harness.compress import irexec

    if graph.numeric == "float32":  # plain float math: torch is as exact as the reference, and faster
        out, method = irexec.run(graph, x), "float-ir-torch"
    else:
        from harness.codegen.reference import run as reference_run

        # in chunks: im2col of a whole test split holds gigabytes
        out, method = np.concatenate([reference_run(graph, x[i : i + 256]) for i in range(0, max(len(x), 1), 256)]), "reference"
    return float((np.asarray(out).argmax(1) == y).mean() * 100.0), method
