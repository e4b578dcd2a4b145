"""A small slice of UCI Adult (sex) and an unconstrained model, built once per session."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fairness_slice import N_TEST, N_TRAIN, AdultSlice, make_model, training_arguments


@pytest.fixture(scope="session")
def adult() -> AdultSlice:
    from trustlab.core.data import load_dataset

    train = load_dataset("adult", split="train", sensitive=("sex",))
    test = load_dataset("adult", split="test", sensitive=("sex",))
    rng = np.random.default_rng(0)
    tr = rng.choice(len(train), N_TRAIN, replace=False)
    te = rng.choice(len(test), N_TEST, replace=False)
    return AdultSlice(
        x_train=train.x[tr],
        y_train=train.y[tr],
        s_train=train.sensitive["sex"][tr],
        x_test=test.x[te],
        y_test=test.y[te],
        s_test=test.sensitive["sex"][te],
    )


@pytest.fixture(scope="session")
def baseline(adult: AdultSlice) -> torch.nn.Module:
    """An unconstrained MLP trained with plain cross-entropy on the slice."""
    from trustlab.core.training import fit_classifier

    model = make_model()
    fit_classifier(model, adult.x_train, adult.y_train, **training_arguments())
    return model
