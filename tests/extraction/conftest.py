"""Fixtures of the extraction tests: a small digits victim, trained once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from extraction_helpers import DigitsSplit, make_mlp, single_thread
from torch import nn

from trustlab.core.data import load_dataset
from trustlab.core.training import accuracy, fit_classifier


@pytest.fixture(scope="session")
def digits() -> DigitsSplit:
    ds = load_dataset("digits")
    x = torch.from_numpy(ds.x).reshape(len(ds.x), -1)
    y = torch.from_numpy(ds.y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, pool, test = order[:800], order[800:1400], order[1400:]
    return DigitsSplit(x[train], y[train], x[pool], y[pool], x[test], y[test])


@pytest.fixture(scope="session")
def victim(digits: DigitsSplit) -> nn.Module:
    """An MLP on flattened digits with about 95% test accuracy."""
    model = make_mlp(hidden=64, seed=1)
    with single_thread():
        fit_classifier(model, digits.x_train, digits.y_train, epochs=40, lr=3e-3, batch_size=64)
    model.eval()
    assert accuracy(model, digits.x_test, digits.y_test) > 0.9
    return model


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Small models train much faster on one thread, above all on a busy machine."""
    with single_thread():
        yield
