"""Shared, process-cached data and models for the compression tests (plain functions, imported by
the test modules; tests/conftest.py belongs to others): the offline digits data at 28x28 and a
LeNet-Light trained on it once per test process (a few seconds on 2 cores)."""

from __future__ import annotations

import copy
import functools
import time

# LeNet-Light on digits 28x28: 15 epochs at lr 2e-3 reach ~97 % in ~3 s on 2 cores.
LENET_LIGHT_EPOCHS = 15
LENET_LIGHT_LR = 2e-3


@functools.cache
def digits_data():
    from harness.compress.data import load_dataset

    return load_dataset("digits", resize=28, seed=0)


@functools.cache
def _trained_lenet_light():
    from harness.compress.models import build_model
    from harness.compress.train import accuracy, configure_torch, seed_everything, train

    configure_torch(2)
    ds = digits_data()
    seed_everything(0)
    model = build_model("lenet-light", ds.input_shape, ds.num_classes)
    t0 = time.perf_counter()
    train(model, ds.x_train, ds.y_train, epochs=LENET_LIGHT_EPOCHS, lr=LENET_LIGHT_LR, seed=0, progress=lambda *a: None)
    seconds = time.perf_counter() - t0
    return model, accuracy(model, ds.x_test, ds.y_test), seconds


def trained_lenet_light():
    """(a fresh copy of the trained model, its test accuracy in %, training seconds)."""
    model, acc, seconds = _trained_lenet_light()
    return copy.deepcopy(model), acc, seconds
