"""The steps behind ``api.compress``: baseline (cached), pruning or accuracy-targeted rate search
(cached per step), optional QAT, export, PTQ, metadata."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.compress import cache as cache_mod
from harness.compress import prune as P
from harness.compress import resources
from harness.compress.api import CompressRequest, Progress, graph_accuracy
from harness.compress.data import Dataset, load_dataset
from harness.compress.errors import PruningError
from harness.compress.export import count_params, export_graph
from harness.compress.models import build_model
from harness.compress.onnx_import import import_onnx
from harness.compress.quantize import qat_finetune, quantize_graph
from harness.compress.train import accuracy, configure_torch, seed_everything, train
from harness.ir import Graph
from harness.ir_meta import ArtifactMetadata, Budget, CompressionRecord

STAGE_VERSION = 3  # bump when training/pruning code changes what a cached model would be (3: lr_schedule)


class Pipeline:
    def __init__(self, req: CompressRequest, cache_dir: Path | None, progress: Progress | None):
        self.req, self.progress = req, progress
        self.cache = cache_mod.ModelCache(cache_dir)
        self.data: Dataset = None  # type: ignore[assignment]
        self.notes: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    # --------------------------------------------------------------------------------- main flow

    def execute(self) -> tuple[Graph, nn.Module | None, ArtifactMetadata]:
        req = self.req
        clock = _Clock(self.timings)
        configure_torch(req.threads)
        seed_everything(req.seed)
        ds = req.dataset
        self.data = load_dataset(ds.name, ds.path, ds.resize, ds.seed, source=ds.source, train_size=ds.train_size,
                                 test_size=ds.test_size, fallback=ds.fallback)
        clock("data")
        if req.model.arch.lower().endswith(".onnx"):
            if req.compression.method != "none" or req.prune_layers or req.sensitivity is not None:
                raise PruningError("ONNX models are taken as trained: pruning needs a zoo model or a torch module")
            model, graph, acc_float = None, import_onnx(req.model.arch, req.model.id), None
        else:
            base, base_key, base_acc = self.baseline()
            self.notes["accuracy_baseline"] = base_acc
            clock("baseline")
            model, acc_float = self.pruned(base, base_key, base_acc)
            clock("pruning")
            if req.qat_epochs > 0 and req.numeric != "float32":
                model = self.qat(model)
                acc_float = accuracy(model, self.data.x_test, self.data.y_test)
                clock("qat")
            graph = export_graph(model, self.data.input_shape, req.model.id)
        float_graph = graph
        _record_sparsity(float_graph)
        if acc_float is None:
            acc_float, _ = graph_accuracy(float_graph, self.data.x_test, self.data.y_test)
        if req.numeric != "float32":
            graph = quantize_graph(float_graph, self.data.x_train[: req.calibration_samples], req.numeric)
        clock("export_quantize")
        acc_q, method = graph_accuracy(graph, self.data.x_test, self.data.y_test)
        clock("graph_accuracy")
        return graph, model, self.metadata(float_graph, graph, acc_float, acc_q, method)

    def metadata(self, float_graph: Graph, graph: Graph, acc_float: float, acc_q: float, method: str) -> ArtifactMetadata:
        req = self.req
        total, nonzero = count_params(float_graph)
        est = resources.estimate(graph)
        inp = graph.tensors[graph.inputs[0]].quant
        compression = CompressionRecord(**{
            **req.compression.model_dump(),
            "prune_layers": req.prune_layers, "prune_channels": req.prune_channels, "sensitivity": req.sensitivity,
            "budget": Budget(flash=req.max_flash, ram=req.max_ram, macs=req.max_macs),
            "qat_epochs": req.qat_epochs, **self.notes.get("compression", {}),
        })  # fmt: skip
        return ArtifactMetadata(
            model=req.model.id,
            arch=req.model.arch,
            model_settings=req.model.model_dump(),
            dataset=req.dataset.model_dump(),
            dataset_used=self.data.describe(),
            seed=req.seed,
            numeric=req.numeric,
            compression=compression,
            accuracy_baseline=self.notes.get("accuracy_baseline"),
            accuracy_float=round(acc_float, 4),
            accuracy_quant=round(acc_q, 4),
            accuracy_quant_method=method,
            accuracy_split=f"held-out test split, {len(self.data.y_test)} images ({self.data.split})",
            params_total=total,
            params_nonzero=nonzero,
            macs=est.macs,
            resources_estimate=est.as_dict(),
            input_shape=list(self.data.input_shape),
            num_classes=self.data.num_classes,
            input_quant=asdict(inp) if inp is not None else None,
            timings_s={k: round(v, 3) for k, v in self.timings.items()},
            calibration_samples=min(req.calibration_samples, len(self.data.x_train)) if req.numeric != "float32" else 0,
        )

    # ---------------------------------------------------------------------------------- training

    def baseline(self) -> tuple[nn.Module, str, float]:
        m, ds = self.req.model, self.req.dataset
        if self.req.module is not None:  # a user's own module: trained here, not cached (no stable key)
            model = copy.deepcopy(self.req.module).cpu()
            seed_everything(self.req.seed)
            self._train_baseline(model)
            key = cache_mod.key(STAGE_VERSION, "user-module", id(model))
            self.cache = cache_mod.ModelCache(None)
            return model.eval(), key, accuracy(model, self.data.x_test, self.data.y_test)
        k = cache_mod.key(STAGE_VERSION, "baseline", m.arch, m.epochs, m.lr, m.batch_size, m.lr_schedule, ds.model_dump(),
                          self.req.seed)

        def fresh() -> dict[str, Any]:
            seed_everything(self.req.seed)
            model = build_model(m.arch, self.data.input_shape, self.data.num_classes)
            self._train_baseline(model)
            return {"model": model, "accuracy": accuracy(model, self.data.x_test, self.data.y_test)}

        hit = self.cache.get_or_compute("baseline", k, fresh)
        return hit["model"], k, hit["accuracy"]

    def _train_baseline(self, model: nn.Module) -> nn.Module:
        """The baseline alone follows the model's ``lr_schedule``; retraining and QAT keep a constant rate."""
        m = self.req.model
        return self._train(model, m.epochs, "train baseline", self.req.seed, cosine_decay=m.lr_schedule == "cosine")

    def _train(self, model: nn.Module, epochs: float, label: str, seed: int, **kw: Any) -> nn.Module:
        m = self.req.model
        return train(
            model, self.data.x_train, self.data.y_train, epochs=epochs, lr=m.lr, batch_size=m.batch_size, seed=seed,
            progress=self.progress, label=label, **kw,
        )  # fmt: skip

    def qat(self, model: nn.Module) -> nn.Module:
        model = copy.deepcopy(model)
        masks = P.Masks(model) if self.req.compression.method == "element" else None
        return qat_finetune(
            model, self.req.numeric,
            lambda mm: self._train(mm, self.req.qat_epochs, "QAT", self.req.seed + 7, after_step=masks.apply if masks else None),
        )  # fmt: skip

    # ----------------------------------------------------------------------------------- pruning

    def spec(self) -> P.PruneSpec:
        c, req = self.req.compression, self.req
        method = c.method
        if method == "none" and (req.prune_layers or req.max_flash or req.max_ram or req.max_macs):
            method = "structural"
        if method == "none" and req.sensitivity is not None:
            method = "element"
        heuristic = c.heuristic
        if method == "element" and heuristic not in P.ELEMENT_HEURISTICS:
            heuristic = "magnitude" if heuristic in ("l1", "l2") else heuristic
        spec = P.PruneSpec(
            method, heuristic, c.rate, c.schedule, c.agp_steps, list(req.prune_layers), list(req.prune_channels),
            req.sensitivity, allocation=c.allocation,
        )  # fmt: skip
        if any(v is not None for v in (req.max_flash, req.max_ram, req.max_macs)):
            spec.plan_fn = self._budget_plan
        if c.target_relative_accuracy is not None and c.candidate_rates:
            P.PruneSpec(**{**spec.__dict__, "rate": max(c.candidate_rates)}).validate()  # search sets rates per step
        else:
            spec.validate()
        return spec

    def _retrain_epochs(self) -> float:
        own = self.req.compression.retrain_epochs
        return self.req.model.retrain_epochs if own is None else own

    def _retrain(self) -> P.RetrainConfig:
        m = self.req.model
        return P.RetrainConfig(self._retrain_epochs(), m.lr, m.batch_size, self.req.seed)

    def pruned(self, base: nn.Module, base_key: str, base_acc: float) -> tuple[nn.Module, float]:
        spec = self.spec()
        if spec.method == "none":
            self.notes["compression"] = {"selected_rate": 0.0, "achieved_rate": 0.0}
            return base, base_acc
        c = self.req.compression
        if c.target_relative_accuracy is not None:
            return self.search(base, base_key, base_acc, spec)
        k = cache_mod.key(STAGE_VERSION, base_key, self._spec_key(spec), self._retrain_epochs())

        def fresh() -> dict[str, Any]:
            res = P.prune(base, spec, self.data, self._retrain(), progress=self.progress, evaluate=self._acc)
            return {"model": res.model, "accuracy": self._acc(res.model), "history": [asdict(h) for h in res.history]}

        hit = self.cache.get_or_compute("pruned", k, fresh)
        achieved = _achieved(base, hit["model"], spec)
        self.notes["compression"] = {"selected_rate": spec.rate, "achieved_rate": achieved, "history": hit["history"]}
        if spec.rate is not None and achieved < spec.rate - 0.01:
            self.notes["compression"]["warning"] = (
                f"rate {spec.rate} not reachable: {achieved} removed with every prunable layer at its minimum "
                "(layers feeding the output, a concat or an op the tracer cannot see through keep their width)"
            )
        return hit["model"], hit["accuracy"]

    def search(self, base: nn.Module, base_key: str, base_acc: float, spec: P.PruneSpec) -> tuple[nn.Module, float]:
        """Walk all candidate rates upwards, each continuing from the previous pruned model; keep the
        highest rate whose accuracy stays >= target x baseline. Each step is cached by its rate path,
        so targets that walk the same rates (e.g. 0.99 and 0.97 over a shared list) share the work."""
        c = self.req.compression
        target = c.target_relative_accuracy or 1.0
        original = P.count_weights(base)
        best: tuple[nn.Module, float, float] = (base, base_acc, 0.0)
        model, prev, path, trail = base, 0.0, [], []
        for rate in sorted(set(c.candidate_rates)):
            path.append(rate)
            step_spec = copy.copy(spec)
            step_spec.rate = rate
            k = cache_mod.key(STAGE_VERSION, base_key, self._spec_key(step_spec), path, self._retrain_epochs())

            def fresh(model: nn.Module = model, step_spec: P.PruneSpec = step_spec, prev: float = prev) -> dict[str, Any]:
                res = P.prune(model, step_spec, self.data, self._retrain(), start_rate=prev, original_params=original,
                              progress=self.progress)  # fmt: skip
                return {"model": res.model, "accuracy": self._acc(res.model), "history": [asdict(h) for h in res.history]}

            hit = self.cache.get_or_compute("pruned", k, fresh)
            model, prev = hit["model"], rate
            rel = hit["accuracy"] / base_acc if base_acc else 0.0
            passed = rel >= target
            trail.append({"rate": rate, "accuracy": hit["accuracy"], "relative": round(rel, 4), "passed": passed,
                          "achieved_rate": _achieved(base, model, spec)})  # fmt: skip
            if passed:  # no early stop: accuracy is not monotonic in the rate after retraining
                best = (model, hit["accuracy"], rate)
        self.notes["compression"] = {"selected_rate": best[2], "achieved_rate": _achieved(base, best[0], spec), "search": trail}
        return best[0], best[1]

    def _spec_key(self, spec: P.PruneSpec) -> dict[str, Any]:
        d = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name != "plan_fn"}  # asdict would deep-copy plan_fn
        d["budget"] = [self.req.max_flash, self.req.max_ram, self.req.max_macs, self.req.numeric if spec.plan_fn else None]
        d["train"] = [self.req.model.lr, self.req.model.batch_size]
        return d

    def _acc(self, model: nn.Module) -> float:
        return accuracy(model, self.data.x_test, self.data.y_test)

    def _budget_plan(self, model: nn.Module) -> dict[str, int]:
        """Resource-aware mode: the widest uniform width fraction whose estimate fits every budget."""
        from harness.compress import deps as deps_mod

        shape = self.data.input_shape
        dep = deps_mod.analyse(model, shape)
        numeric = self.req.numeric

        def fits(fraction: float) -> bool:
            keep = P.uniform_keep(dep, fraction)
            trial = copy.deepcopy(model)
            idx = {k: torch.arange(n) for k, n in keep.items()}
            est = resources.estimate(export_graph(P.apply_structural(trial, deps_mod.analyse(trial, shape), idx), shape), numeric)
            return all(b is None or v <= b for v, b in
                       ((est.flash_bytes, self.req.max_flash), (est.ram_bytes, self.req.max_ram), (est.macs, self.req.max_macs)))  # fmt: skip

        if fits(1.0):
            return P.uniform_keep(dep, 1.0)
        lo, hi = 0.0, 1.0
        if not fits(1e-6):
            raise PruningError(
                "the resource budget cannot be met even with one channel per prunable layer "
                f"(budget flash={self.req.max_flash}, ram={self.req.max_ram}, macs={self.req.max_macs})"
            )
        for _ in range(12):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(mid) else (lo, mid)
        return P.uniform_keep(dep, lo)


class _Clock:
    """Accumulates wall time per phase (reported in metadata: where compression time goes)."""

    def __init__(self, into: dict[str, float]):
        self.into, self.t = into, time.perf_counter()

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.into[phase] = self.into.get(phase, 0.0) + now - self.t
        self.t = now


def _achieved(base: nn.Module, model: nn.Module, spec: P.PruneSpec) -> float:
    n = P.count_nonzero(model) if spec.method == "element" else P.count_weights(model)
    return round(1 - n / P.count_weights(base), 4)


def _record_sparsity(graph: Graph) -> None:
    """TensorInfo.sparsity = fraction of exact zeros in each conv/linear weight (element pruning)."""
    for n in graph.nodes:
        if n.op in ("conv2d", "linear"):
            w = graph.constants[n.inputs[1]]
            graph.tensors[n.inputs[1]].sparsity = round(float(np.mean(w == 0)), 6)
