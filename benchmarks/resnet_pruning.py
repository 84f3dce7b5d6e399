"""What grouped structural pruning does to the zoo ResNet at seed 002's Table 4 rates (93.2, 98.7,
99.6 %), with the settings of campaigns/alexnet-resnet-cifar10.toml (L1, AGP 2 steps, 1 baseline
epoch, 0.5 retraining epochs, CIFAR-10 3x32x32 or, without the batches, its synthetic stand-in):
parameters, MACs, channel widths and uint8 flash/RAM estimates before and after, per allocation.
Accuracy is printed but means nothing on the synthetic stand-in.

Usage: .venv/bin/python benchmarks/resnet_pruning.py [--data-dir DIR] [--allocation uniform,macs,latency]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.compress.data import load_dataset
from harness.compress.export import export_graph
from harness.compress.models import build_model
from harness.compress.prune import PruneSpec, RetrainConfig, count_weights, prune
from harness.compress.quantize import quantize_graph
from harness.compress.resources import estimate
from harness.compress.train import accuracy, configure_torch, seed_everything, train

RATES = (0.932, 0.987, 0.996)
RESIDUAL = ("conv1", "layers.1.conv2", "layers.2.conv2")  # one member of each residual group
INNER = ("layers.0.conv1", "layers.1.conv1", "layers.2.conv1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="CIFAR-10 batches (default: the synthetic stand-in)")
    ap.add_argument("--allocation", default="uniform", help="comma-separated: uniform, macs, latency")
    args = ap.parse_args()
    configure_torch(2)
    seed_everything(0)
    ds = load_dataset("cifar10", args.data_dir, resize=32, seed=0, train_size=512, test_size=256, fallback="synthetic")
    base = build_model("resnet", ds.input_shape, ds.num_classes)
    train(base, ds.x_train, ds.y_train, epochs=1, lr=1e-3, seed=0, progress=lambda *a: None)
    print(f"data: {ds.name} ({'synthetic stand-in' if ds.synthetic else ds.source})")
    head = f"{'allocation':10} {'rate':>6} {'achieved':>8} {'params':>7} {'MACs':>9} {'flash B':>8} {'RAM B':>6}"
    print(head, f"{'residual widths':>16} {'inner widths':>13} acc%")
    _row("unpruned", 0.0, base, base, ds)
    for alloc in args.allocation.split(","):
        for rate in RATES:
            spec = PruneSpec("structural", "l1", rate, "agp", 2, allocation=alloc)  # type: ignore[arg-type]
            res = prune(base, spec, ds, RetrainConfig(epochs=0.5), progress=lambda *a: None)
            _row(alloc, rate, base, res.model, ds)


def _row(label: str, rate: float, base, model, ds) -> None:  # type: ignore[no-untyped-def]
    graph = export_graph(model, ds.input_shape)
    res = estimate(quantize_graph(graph, ds.x_train[:64], "uint8"), "uint8")
    mods = dict(model.named_modules())
    widths = ["/".join(str(mods[k].out_channels) for k in names) for names in (RESIDUAL, INNER)]
    achieved = 1 - count_weights(model) / count_weights(base)
    print(f"{label:10} {rate:6.3f} {achieved:8.4f} {count_weights(model):7d} {res.macs:9d} {res.flash_bytes:8d} "
          f"{res.ram_bytes:6d} {widths[0]:>16} {widths[1]:>13} {accuracy(model, ds.x_test, ds.y_test):.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
