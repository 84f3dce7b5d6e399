"""Seeded training and evaluation (CPU by default, GPU when present) with a rich progress bar.

Training is counted in batches so pruning schedules can retrain for fractions of an epoch; a
``after_step`` hook lets element-wise pruning re-apply its masks after every optimizer step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from harness import stop

if TYPE_CHECKING:
    import rich.progress

Progress = Callable[[str, float], None]  # (description, fraction done)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_torch(threads: int = 2) -> None:
    """Bound intra-op threads (why: the bench machine has 2 cores; more threads only thrash)."""
    torch.set_num_threads(max(1, threads))


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    while True:
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            yield xt[idx], yt[idx]


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: float,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 1e-4,
    after_step: Callable[[], None] | None = None,
    loss_hook: Callable[[nn.Module], torch.Tensor] | None = None,
    progress: Progress | None = None,
    label: str = "train",
    cosine_decay: bool = False,
) -> nn.Module:
    """Train with Adam (the seed's optimizer) for ``epochs`` (fractions allowed) and return the model."""
    steps_per_epoch = max(1, -(-len(x) // batch_size))
    total = round(epochs * steps_per_epoch)
    if total <= 0:
        return model
    dev = device()
    model.to(dev).train()
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    # Why decay: with a constant rate the last batches leave the weights wherever the noise put
    # them, and the baseline's accuracy varied by 0.75 points between CPUs (98.15 / 97.40 %).
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total) if cosine_decay else None
    loss_fn = nn.CrossEntropyLoss()
    batches = _batches(x, y, batch_size, gen)
    with _Bar(progress, label, total) as tick:
        for _ in range(total):
            stop.raise_if_requested()  # Ctrl-C / SIGTERM reach this worker thread here
            xb, yb = next(batches)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb.to(dev)), yb.to(dev))
            if loss_hook is not None:
                loss = loss + loss_hook(model)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            if after_step is not None:
                after_step()
            tick()
    return model.eval().cpu()  # stages in between (ranking, export, caching) work on CPU tensors


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits for ``x`` as a numpy array (eval mode)."""
    dev = device()
    model.to(dev).eval()
    outs = [model(torch.from_numpy(x[i : i + batch_size]).to(dev)).cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(outs).numpy()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float((predict(model, x).argmax(1) == y).mean() * 100.0)


class _Bar:
    """A rich progress bar, or a callback when the caller (e.g. the campaign runner) owns the display."""

    def __init__(self, progress: Progress | None, label: str, total: int):
        self.progress, self.label, self.total, self.done = progress, label, total, 0
        self._rich: rich.progress.Progress | None = None

    def __enter__(self) -> Callable[[], None]:
        if self.progress is None:
            from rich.errors import LiveError
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), transient=True)
            try:
                bar.start()
            except LiveError:  # another live display (e.g. the campaign's) owns the terminal
                return self._tick
            self._rich = bar
            self._task = bar.add_task(self.label, total=self.total)
        return self._tick

    def _tick(self) -> None:
        self.done += 1
        if self._rich is not None:
            self._rich.advance(self._task)
        elif self.progress is not None:
            self.progress(self.label, self.done / self.total)

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
