"""Helpers of the fairness tests: the Adult slice record, the model and its training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

N_TRAIN = 4000
N_TEST = 6000
EPOCHS = 8
LR = 3e-3
BATCH_SIZE = 128


@dataclass(frozen=True)
class AdultSlice:
    x_train: np.ndarray
    y_train: np.ndarray
    s_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    s_test: np.ndarray


def make_model() -> torch.nn.Module:
    from trustlab.core.models import build_model
    from trustlab.core.training import seed_everything

    seed_everything(0)
    return build_model("mlp", arguments={"in_features": 89, "hidden": [32]})


def training_arguments() -> dict[str, Any]:
    return {"epochs": EPOCHS, "lr": LR, "batch_size": BATCH_SIZE, "seed": 0}
