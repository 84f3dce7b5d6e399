"""The baseline's learning-rate schedule: cosine decay ends training with near-zero steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.compress.train import configure_torch, train
from harness.config.campaign import ModelSettings


def _last_step_size(cosine_decay: bool) -> float:
    """Largest weight change made by the final optimizer step of a short seeded training."""
    configure_torch(1)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    rng = np.random.default_rng(0)
    x = rng.random((256, 1, 4, 4), dtype=np.float32)
    y = rng.integers(0, 4, 256).astype(np.int64)
    snapshots: list[torch.Tensor] = []

    def snapshot() -> None:
        snapshots.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))

    train(model, x, y, epochs=2, lr=1e-2, batch_size=32, seed=0, after_step=snapshot, cosine_decay=cosine_decay)
    return float((snapshots[-1] - snapshots[-2]).abs().max())


def test_cosine_decay_makes_the_last_step_small() -> None:
    # Adam's step is about lr per weight; the cosine schedule's last rate is lr * (1 - cos(pi/16)) / 2.
    constant, cosine = _last_step_size(False), _last_step_size(True)
    assert constant > 1e-3
    assert cosine < constant / 50


def test_model_settings_default_to_constant_and_reject_unknown_schedules() -> None:
    assert ModelSettings(id="m", arch="lenet").lr_schedule == "constant"
    with pytest.raises(ValueError, match="lr_schedule"):
        ModelSettings(id="m", arch="lenet", lr_schedule="step")  # type: ignore[arg-type]
