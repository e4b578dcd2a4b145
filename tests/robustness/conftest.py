"""Shared fixtures of the robustness tests: a digits CNN trained once per test session.

The model is the ``digits-cnn`` architecture trained on scikit-learn's 8x8 digits (inputs of
shape (n, 1, 8, 8) in [0, 1]); it reaches about 97 % test accuracy. Tests must not train or
otherwise change it: copy it (``copy.deepcopy``) first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from trustlab.core.data import load_dataset, train_test_split_indices
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier, seed_everything

#: The Linf radius at which PGD breaks the undefended digits CNN (robust accuracy near 0) while
#: uniform noise of the same size barely hurts it (about 95 % accuracy).
LINF_EPS = 0.2
#: An L2 radius of comparable strength on 64-pixel inputs.
L2_EPS = 1.0


@dataclass(frozen=True)
class DigitsSplit:
    """The digits data set split into a training and a test part (float32, int64 tensors)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Run the robustness tests on one thread: the small models here gain nothing from more,
    and on a busy machine extra threads only wait for one another. Module-scoped, so that it
    also covers the module-scoped fixtures that run attacks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits_split() -> DigitsSplit:
    data = load_dataset("digits")
    x = torch.as_tensor(data.x, dtype=torch.float32)
    y = torch.as_tensor(data.y, dtype=torch.int64)
    train, test = train_test_split_indices(len(y), test_fraction=0.25, seed=0, stratify=data.y)
    train_t, test_t = torch.as_tensor(train), torch.as_tensor(test)
    return DigitsSplit(x[train_t], y[train_t], x[test_t], y[test_t])


@pytest.fixture(scope="session")
def digits_cnn(digits_split: DigitsSplit) -> nn.Module:
    """An undefended digits CNN in eval mode, trained once per session (do not modify it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small model trains fastest on one thread of a busy machine
    try:
        seed_everything(0)
        model = build_model("digits-cnn")
        fit_classifier(
            model, digits_split.x_train, digits_split.y_train, epochs=8, lr=3e-3, batch_size=128
        )
    finally:
        torch.set_num_threads(threads)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


@pytest.fixture(scope="session")
def attack_inputs(digits_split: DigitsSplit) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 64 test examples: the inputs every attack test works on."""
    return digits_split.x_test[:64].clone(), digits_split.y_test[:64].clone()


@pytest.fixture(scope="session")
def linf_eps() -> float:
    return LINF_EPS


@pytest.fixture(scope="session")
def l2_eps() -> float:
    return L2_EPS
