"""Structural and element-wise pruning with one-shot or AGP schedules and retraining.

Structural pruning physically removes conv filters / linear rows (and the dependent input channels
or flatten columns downstream, see ``deps``), so the exported model is smaller; producers joined by
a residual add are one group and lose the same channels. Element-wise
pruning zeroes weights under a mask that survives retraining (gradients masked, mask re-applied
after every optimizer step). ``rate`` always means the fraction of the *original* conv/linear
parameters removed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from harness.compress import deps as deps_mod
from harness.compress.data import Dataset
from harness.compress.errors import PruningError
from harness.compress.train import Progress, train

STRUCTURAL_HEURISTICS = ("l1", "l2", "gradient", "apoz", "random", "magnitude")
ELEMENT_HEURISTICS = ("magnitude", "global-magnitude", "random")
ALLOCATIONS = ("uniform", "macs", "latency")


@dataclass
class PruneSpec:
    """What to prune and how. ``layers``/``channels``: absolute filters removed per layer (the seed's
    ``--prune-layers``/``--prune-channels``); ``sensitivity``: Han et al. threshold for linear layers."""

    method: Literal["none", "structural", "element"] = "none"
    heuristic: str = "l1"
    rate: float | None = None
    schedule: Literal["one-shot", "agp"] = "agp"
    agp_steps: int = 4
    layers: list[str] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)
    sensitivity: float | None = None
    plan_fn: Callable[[nn.Module], dict[str, int]] | None = None  # resource-aware mode: layer -> channels kept
    allocation: Literal["uniform", "macs", "latency"] = "uniform"  # how a structural rate is shared by the layers

    def validate(self) -> None:
        if self.rate is not None and not 0 <= self.rate < 1:
            raise PruningError(f"pruning rate {self.rate} is outside [0, 1) (it is the fraction of parameters removed)")
        if self.layers and len(self.layers) != len(self.channels):
            raise PruningError(f"--prune-layers has {len(self.layers)} entries but --prune-channels has {len(self.channels)}")
        if self.sensitivity is not None and self.sensitivity < 0:
            raise PruningError(f"sensitivity must be >= 0, got {self.sensitivity}")
        if self.method == "structural" and self.rate is None and not self.layers and self.plan_fn is None:
            raise PruningError("structural pruning needs a rate, --prune-layers/--prune-channels or a resource budget")
        if self.method == "element" and self.rate is None and self.sensitivity is None:
            raise PruningError("element-wise pruning needs a rate (target sparsity) or a sensitivity")
        if self.allocation not in ALLOCATIONS:
            raise PruningError(f"allocation {self.allocation!r} is not one of {', '.join(ALLOCATIONS)}")
        ok = STRUCTURAL_HEURISTICS if self.method == "structural" else ELEMENT_HEURISTICS
        if self.method != "none" and self.heuristic not in ok:
            raise PruningError(f"heuristic {self.heuristic!r} does not apply to {self.method} pruning; use one of {', '.join(ok)}")


@dataclass
class PruneStep:
    target: float  # scheduled fraction of original parameters removed (0..1 progress for per-layer counts)
    achieved: float  # measured fraction of original parameters now zero or removed
    accuracy: float | None = None


def agp_schedule(s_i: float, s_f: float, n: int, t0: int = 0, dt: int = 1) -> list[float]:
    """Zhu & Gupta / paper Eq. 1: s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n dt))^3 for t = t0, t0+dt, ..., t0+n dt."""
    return [s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3 for t in range(t0, t0 + n * dt + 1, dt)]


def weight_layers(model: nn.Module) -> dict[str, nn.Conv2d | nn.Linear]:
    return {k: m for k, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


def count_weights(model: nn.Module) -> int:
    """Conv/linear weights and biases: the parameters a rate refers to (BN is folded away on export)."""
    return sum(p.numel() for m in weight_layers(model).values() for p in m.parameters(recurse=False))


def count_nonzero(model: nn.Module) -> int:
    return sum(int((p != 0).sum()) for m in weight_layers(model).values() for p in m.parameters(recurse=False))


# ----------------------------------------------------------------------------------- element-wise


class Masks:
    """Element-wise masks on conv/linear weights, kept through retraining."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.masks = {k: (m.weight.detach() != 0).float() for k, m in weight_layers(model).items()}

    def apply(self) -> None:
        with torch.no_grad():
            for k, m in weight_layers(self.model).items():
                m.weight.mul_(self.masks[k].to(m.weight.device))

    def hooks(self) -> list[torch.utils.hooks.RemovableHandle]:
        """Zero the gradients of pruned weights (they stay out of the optimizer's reach)."""
        return [
            m.weight.register_hook(lambda g, k=k: g * self.masks[k].to(g.device)) for k, m in weight_layers(self.model).items()
        ]

    def sparsity(self) -> dict[str, float]:
        return {k: float(1 - v.mean()) for k, v in self.masks.items()}


def _global_magnitude_prune(masks: Masks, sparsity: float, layers: list[str]) -> None:
    """One |w| threshold for all layers (Han et al.): the ``sparsity`` fraction of all listed weights
    with the smallest magnitude goes, so small, sensitive layers (the first conv) keep more."""
    mods = {k: m for k, m in weight_layers(masks.model).items() if not layers or k in layers}
    scores = torch.cat([(m.weight.detach().abs() * masks.masks[k].to(m.weight.device)).flatten().cpu()
                        for k, m in mods.items()])  # fmt: skip
    n_prune = round(sparsity * scores.numel())
    if n_prune == 0:
        return
    threshold = torch.kthvalue(scores, n_prune).values
    for k, m in mods.items():
        keep = (m.weight.detach().abs().cpu() > threshold).float()
        masks.masks[k] = torch.minimum(masks.masks[k].cpu(), keep)
    masks.apply()


def _element_prune(masks: Masks, sparsity: float, heuristic: str, layers: list[str], gen: torch.Generator) -> None:
    """Per-layer: zero the ``sparsity`` fraction of weights with the smallest score (|w| or random);
    ``global-magnitude``: one threshold across layers."""
    if heuristic == "global-magnitude":
        _global_magnitude_prune(masks, sparsity, layers)
        return
    for k, m in weight_layers(masks.model).items():
        if layers and k not in layers:
            continue
        w = m.weight.detach()
        n_prune = round(sparsity * w.numel())
        score = w.abs().flatten() if heuristic == "magnitude" else torch.rand(w.numel(), generator=gen) + 1e-3
        score = score * masks.masks[k].flatten().to(score.device)  # already pruned stay pruned
        new = torch.ones(w.numel())
        new[torch.argsort(score, stable=True)[:n_prune]] = 0
        masks.masks[k] = torch.minimum(masks.masks[k].flatten().cpu(), new).reshape(w.shape)
    masks.apply()


def sensitivity_prune(masks: Masks, sensitivity: float, layers: list[str]) -> None:
    """Han et al.: drop weights with |w| < sensitivity * std(w) (linear layers unless ``layers``)."""
    for k, m in weight_layers(masks.model).items():
        if (layers and k not in layers) or (not layers and not isinstance(m, nn.Linear)):
            continue
        w = m.weight.detach().cpu()
        masks.masks[k] = masks.masks[k].cpu() * (w.abs() >= sensitivity * w.std()).float()
    masks.apply()


# -------------------------------------------------------------------------------------- structural


def structure_scores(
    model: nn.Module, dep: deps_mod.Dependencies, heuristic: str, data: Dataset, seed: int, batches: int = 8
) -> dict[str, torch.Tensor]:
    """Importance per output channel of every prunable group (higher = keep).

    A group's channel ``c`` removes filter ``c`` of every member at once, so each heuristic scores
    the members' filters ``c`` *concatenated*: L1 = the sum of the members' L1 norms, L2 = the
    root of the summed squares, gradient = mean |grad| over all those weights, APoZ = the mean of
    the members' zero fractions. (Sum and mean of L1 rank a group's channels identically, every
    channel having the same members; the sum is Li et al.'s criterion on the removed weights.)"""
    layers = weight_layers(model)
    if heuristic in ("l1", "magnitude", "l2"):
        p = 1 if heuristic != "l2" else 2
        return {k: sum((layers[m].weight.detach().flatten(1).norm(p=p, dim=1).cpu() ** p for m in g.members),
                       torch.zeros(g.channels)) ** (1 / p) for k, g in dep.groups.items()}  # fmt: skip
    if heuristic == "random":
        gen = torch.Generator().manual_seed(seed)
        return {k: torch.rand(dep.groups[k].channels, generator=gen) for k in dep.groups}
    x = torch.from_numpy(data.x_train[: 64 * batches])
    y = torch.from_numpy(data.y_train[: 64 * batches])
    if heuristic == "gradient":  # eval mode: gradients flow, BN running statistics stay untouched
        model.eval()
        model.zero_grad()
        for i in range(0, len(x), 64):
            nn.functional.cross_entropy(model(x[i : i + 64]), y[i : i + 64]).backward()
        grads = {m: layers[m].weight.grad for g in dep.groups.values() for m in g.members}
        unused = sorted(k for k, g in grads.items() if g is None)
        if unused:  # frozen weights (requires_grad=False) get no gradient to score them by
            model.zero_grad(set_to_none=True)
            raise PruningError(f"layer(s) {', '.join(unused)} get no gradient (frozen weights); "
                               f"the 'gradient' heuristic cannot rank their filters, use l1 or l2")
        scores = {}
        for k, grp in dep.groups.items():
            flat = [g.detach().abs().flatten(1).cpu() for m in grp.members if (g := grads[m]) is not None]
            scores[k] = sum((f.sum(1) for f in flat), torch.zeros(grp.channels)) / sum(f.shape[1] for f in flat)
        model.zero_grad(set_to_none=True)
        return scores
    if heuristic == "apoz":
        return _apoz_scores(model, dep, x)
    raise PruningError(f"unknown structural heuristic {heuristic!r}; use one of {', '.join(STRUCTURAL_HEURISTICS)}")


@torch.no_grad()
def _apoz_scores(model: nn.Module, dep: deps_mod.Dependencies, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """1 - average percentage of zeros of each channel's activation (Hu et al.), measured after each
    producer's own batch norm (a channel that is mostly <= 0 is mostly zero after its ReLU) and
    averaged over a group's members."""
    mods = dict(model.named_modules())
    zeros: dict[str, torch.Tensor] = {}

    def hook(name: str) -> Callable[..., None]:
        def fn(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
            bn = dep.groups[dep.group_of[name]].member_bn.get(name)
            if bn is not None:
                out = mods[bn](out)
            dims = [d for d in range(out.dim()) if d != 1]
            zeros[name] = zeros.get(name, 0) + (out <= 0).float().mean(dim=dims)

        return fn

    model.eval()
    handles = [mods[m].register_forward_hook(hook(m)) for g in dep.groups.values() for m in g.members]
    try:
        for i in range(0, len(x), 64):
            model(x[i : i + 64])
    finally:
        for h in handles:
            h.remove()
    n = max(1, -(-len(x) // 64))
    return {k: 1 - torch.stack([zeros[m] for m in g.members]).mean(0) / n for k, g in dep.groups.items()}


def params_with(model: nn.Module, dep: deps_mod.Dependencies, keep: dict[str, int]) -> int:
    """Conv/linear parameter count if each group in ``keep`` kept that many output channels."""
    total = 0
    for k, m in weight_layers(model).items():
        out = dep.width(k, keep, m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
        src = dep.producer_of.get(k)
        if isinstance(m, nn.Conv2d):
            cin = keep.get(src[0], m.in_channels) if src else m.in_channels
            total += out * (cin // m.groups) * m.kernel_size[0] * m.kernel_size[1] + (out if m.bias is not None else 0)
        else:
            cin = keep[src[0]] * src[1] if src and src[0] in keep else m.in_features
            total += out * cin + (out if m.bias is not None else 0)
    return total


def uniform_keep(dep: deps_mod.Dependencies, fraction: float, only: list[str] | None = None) -> dict[str, int]:
    return {
        k: max(1, min(g.channels, round(fraction * g.channels))) for k, g in dep.groups.items() if not only or k in only
    }


def keep_for_params(model: nn.Module, dep: deps_mod.Dependencies, budget: int) -> dict[str, int]:
    """Per-layer widths fitting ``budget`` parameters: the largest uniform keep-fraction (bisection),
    then the rounding slack handed back one channel at a time to the relatively narrowest layer."""
    if params_with(model, dep, uniform_keep(dep, 1.0)) <= budget:
        return uniform_keep(dep, 1.0)
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if params_with(model, dep, uniform_keep(dep, mid)) <= budget else (lo, mid)
    keep = uniform_keep(dep, lo)
    while True:
        order = sorted((keep[k] / g.channels, k) for k, g in dep.groups.items() if keep[k] < g.channels)
        for _, k in order:
            trial = {**keep, k: keep[k] + 1}
            if params_with(model, dep, trial) <= budget:
                keep = trial
                break
        else:
            return keep


def output_positions(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Output spatial positions (oh * ow; 1 for linear) of every conv/linear layer, from one forward pass."""
    layers = weight_layers(model)
    seen: dict[str, int] = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, k=k: seen.__setitem__(k, int(out[0, 0].numel())))
               for k, m in layers.items()]  # fmt: skip
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
    return seen


# first-order cycle model of one layer (why: seed 004 prices channels by their resource cost; these
# weights are a rough Cortex-M estimate: a conv MAC reuses its weight, a linear MAC streams it from
# flash, and every output element pays for requantization / activation / store)
LATENCY_CYCLES = {"conv_mac": 1.0, "linear_mac": 2.0, "output": 8.0}


def resource_cost(model: nn.Module, dep: deps_mod.Dependencies, keep: dict[str, int], positions: dict[str, int],
                  kind: str) -> float:  # fmt: skip
    """MACs (``kind="macs"``) or estimated cycles (``"latency"``) if each group kept ``keep[k]`` channels."""
    total = 0.0
    for k, m in weight_layers(model).items():
        out = dep.width(k, keep, m.out_channels if isinstance(m, nn.Conv2d) else m.out_features)
        src = dep.producer_of.get(k)
        pos = positions.get(k, 1)
        if isinstance(m, nn.Conv2d):
            cin = keep.get(src[0], m.in_channels) if src else m.in_channels
            mac = out * (cin // m.groups) * m.kernel_size[0] * m.kernel_size[1] * pos
            per = LATENCY_CYCLES["conv_mac"]
        else:
            cin = keep[src[0]] * src[1] if src and src[0] in keep else m.in_features
            mac, per = out * cin, LATENCY_CYCLES["linear_mac"]
        total += mac if kind == "macs" else per * mac + LATENCY_CYCLES["output"] * out * pos
    return total


def keep_resource_aware(
    model: nn.Module, dep: deps_mod.Dependencies, budget: int, scores: dict[str, torch.Tensor],
    input_shape: tuple[int, ...], kind: str,
) -> dict[str, int]:  # fmt: skip
    """Per-layer widths fitting ``budget`` parameters, chosen greedily: each step removes channels
    from the layer that saves the most resource (MACs or estimated cycles, plus parameters, both
    relative to the unpruned totals) per unit of importance lost (its weakest remaining channels'
    scores relative to the layer's mean). Uniform allocation ignores what a channel costs to run;
    this spends the rate where it buys the most speed for the least accuracy. No layer goes below
    half its uniform width (scores alone would strip the costly convolutions to one channel)."""
    positions = output_positions(model, input_shape)
    floor = {k: max(1, -(-n // 2)) for k, n in keep_for_params(model, dep, budget).items()}
    keep = {k: g.channels for k, g in dep.groups.items()}
    ranked = {k: torch.sort(scores[k].float()).values for k in keep}
    means = {k: float(v.mean()) or 1.0 for k, v in ranked.items()}
    p0, c0 = params_with(model, dep, keep), resource_cost(model, dep, keep, positions, kind) or 1.0
    params, cost = p0, resource_cost(model, dep, keep, positions, kind)
    while params > budget:
        best: tuple[float, str, int, int, float] | None = None  # (value, layer, new width, params, cost)
        for k, n in keep.items():
            step = min(n - floor[k], max(1, n // 50))  # chunks keep wide layers (AlexNet's 4096) fast
            if step < 1:
                continue
            trial = {**keep, k: n - step}
            tp, tc = params_with(model, dep, trial), resource_cost(model, dep, trial, positions, kind)
            first = dep.groups[k].channels - n  # weakest channel still kept (ascending score order)
            lost = float(ranked[k][first : first + step].sum()) / means[k] / step
            value = ((cost - tc) / c0 + (params - tp) / p0) / (lost + 1e-6)
            if best is None or value > best[0]:
                best = (value, k, n - step, tp, tc)
        if best is None:
            break  # every layer is at its floor
        _, k, keep[k], params, cost = best
    return keep


@torch.no_grad()
def apply_structural(model: nn.Module, dep: deps_mod.Dependencies, keep_idx: dict[str, torch.Tensor]) -> nn.Module:
    """Physically remove every channel not listed in ``keep_idx`` (group -> sorted indices kept)
    from all the group's producers, its batch norms and its consumers' inputs."""
    mods = dict(model.named_modules())
    for layer, idx in keep_idx.items():
        g = dep.groups[layer]
        if len(idx) == g.channels:
            continue
        for member in g.members:
            m = mods[member]
            m.weight = nn.Parameter(m.weight[idx].clone())
            if m.bias is not None:
                m.bias = nn.Parameter(m.bias[idx].clone())
            if isinstance(m, nn.Conv2d):
                m.out_channels = len(idx)
            else:
                m.out_features = len(idx)
        for bn_name in g.bns:
            bn = mods[bn_name]
            for attr in ("running_mean", "running_var"):
                setattr(bn, attr, getattr(bn, attr)[idx].clone())
            if bn.affine:
                bn.weight = nn.Parameter(bn.weight[idx].clone())
                bn.bias = nn.Parameter(bn.bias[idx].clone())
            bn.num_features = len(idx)
        for c in g.consumers:
            cm = mods[c.module]
            if isinstance(cm, nn.Conv2d):
                cm.weight = nn.Parameter(cm.weight[:, idx].clone())
                cm.in_channels = len(idx)
            else:
                cols = (idx[:, None] * c.spatial + torch.arange(c.spatial)[None, :]).flatten()
                cm.weight = nn.Parameter(cm.weight[:, cols].clone())
                cm.in_features = len(cols)
        g.channels = len(idx)
    return model


def structural_step(
    model: nn.Module, input_shape: tuple[int, ...], keep: dict[str, int], heuristic: str, data: Dataset, seed: int
) -> nn.Module:
    """Rank channels of each listed group and keep the ``keep[group]`` most important ones."""
    dep = deps_mod.analyse(model, input_shape)
    scores = structure_scores(model, dep, heuristic, data, seed)
    idx = {}
    for k, n_keep in keep.items():
        s = scores[k]
        idx[k] = torch.sort(torch.argsort(s, descending=True, stable=True)[:n_keep]).values
    return apply_structural(model, dep, idx)


def prunable_layers(model: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    return list(deps_mod.analyse(model, input_shape).groups)


# ---------------------------------------------------------------------------------------- driver


@dataclass
class RetrainConfig:
    epochs: float = 4
    lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0


@dataclass
class PruneResult:
    model: nn.Module
    history: list[PruneStep]
    sparsity: dict[str, float]  # per layer: fraction of exact zeros in the weight


def prune(
    model: nn.Module,
    spec: PruneSpec,
    data: Dataset,
    retrain: RetrainConfig,
    *,
    start_rate: float = 0.0,
    original_params: int | None = None,
    progress: Progress | None = None,
    evaluate: Callable[[nn.Module], float] | None = None,
) -> PruneResult:
    """Prune ``model`` (a copy is made) from ``start_rate`` to ``spec.rate`` with retraining.

    ``original_params`` is the unpruned parameter count a rate refers to (defaults to the model's),
    so a search can continue from an already pruned model."""
    spec.validate()
    model = copy.deepcopy(model).cpu().eval()
    original = original_params or count_weights(model)
    shape = data.input_shape
    gen = torch.Generator().manual_seed(retrain.seed)
    targets = _targets(spec, start_rate)
    history: list[PruneStep] = []
    widths = _layer_channels(model, spec, shape) if spec.method == "structural" else {}
    masks = Masks(model) if spec.method == "element" else None
    if masks is not None and spec.sensitivity is not None:
        sensitivity_prune(masks, spec.sensitivity, spec.layers)
    per_step = retrain.epochs / max(1, len(targets))
    for step, target in enumerate(targets):
        if spec.method == "structural":
            keep = _structural_keep(model, spec, shape, target, original, widths, data, retrain.seed + step)
            model = structural_step(model, shape, keep, spec.heuristic, data, retrain.seed + step)
            if spec.sensitivity is not None and step == len(targets) - 1:  # seed flow: filters, then FC weights
                masks = Masks(model)
                sensitivity_prune(masks, spec.sensitivity, [])
        elif masks is not None and spec.rate is not None:
            _element_prune(masks, target, spec.heuristic, spec.layers, gen)
        handles = masks.hooks() if masks is not None else []
        try:
            train(
                model, data.x_train, data.y_train, epochs=per_step, lr=retrain.lr, batch_size=retrain.batch_size,
                seed=retrain.seed + 1000 + step, after_step=masks.apply if masks else None, progress=progress,
                label=f"retrain {step + 1}/{len(targets)}",
            )  # fmt: skip
        finally:
            for h in handles:
                h.remove()
        achieved = 1 - count_nonzero(model) / original
        history.append(PruneStep(target, achieved, evaluate(model) if evaluate else None))
    sparsity = {k: float((m.weight == 0).float().mean()) for k, m in weight_layers(model).items()}
    return PruneResult(model.eval(), history, sparsity)


def _targets(spec: PruneSpec, start: float) -> list[float]:
    if spec.method == "none":
        return []
    if spec.rate is None:  # absolute channels / sensitivity / budget: scheduled as a 0 -> 1 progress
        return agp_schedule(0.0, 1.0, spec.agp_steps)[1:] if spec.schedule == "agp" and spec.layers else [1.0]
    if spec.schedule == "one-shot":
        return [spec.rate]
    return agp_schedule(start, spec.rate, spec.agp_steps)[1:]


def _layer_channels(model: nn.Module, spec: PruneSpec, shape: tuple[int, ...]) -> dict[str, tuple[str, int]]:
    """Group and original width of each layer named in ``spec.layers`` (validated against the
    prunable ones; a residual-tied layer names its whole group)."""
    if not spec.layers:
        return {}
    dep = deps_mod.analyse(model, shape)
    unknown = [k for k in spec.layers if k not in dep.group_of]
    if unknown:
        raise PruningError(
            f"cannot prune layer(s) {unknown}: prunable layers are {list(dep.group_of)} (layers kept whole: {dep.tied})"
        )
    named: dict[str, str] = {}
    for k, n in zip(spec.layers, spec.channels, strict=True):
        g = dep.groups[dep.group_of[k]]
        if g.layer in named:
            raise PruningError(f"layers {named[g.layer]!r} and {k!r} share their channels (residual add: "
                               f"{', '.join(g.members)}); name only one of them")  # fmt: skip
        named[g.layer] = k
        if not 0 <= n < g.channels:
            raise PruningError(f"cannot remove {n} channels from {k!r}: it has {g.channels}")
    return {k: (dep.group_of[k], dep.groups[dep.group_of[k]].channels) for k in spec.layers}


def _structural_keep(
    model: nn.Module, spec: PruneSpec, shape: tuple[int, ...], target: float, original: int,
    widths: dict[str, tuple[str, int]], data: Dataset, seed: int,
) -> dict[str, int]:  # fmt: skip
    if spec.plan_fn is not None:
        return spec.plan_fn(model)
    if spec.layers:  # target is the schedule's progress 0..1 towards the absolute removals
        return {widths[k][0]: widths[k][1] - round(n * target) for k, n in zip(spec.layers, spec.channels, strict=True)}
    dep = deps_mod.analyse(model, shape)
    budget = int(np.floor((1 - target) * original))
    if spec.allocation == "uniform":
        return keep_for_params(model, dep, budget)
    scores = structure_scores(model, dep, spec.heuristic, data, seed)
    return keep_resource_aware(model, dep, budget, scores, shape, spec.allocation)
