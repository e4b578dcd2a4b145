"""A small synthetic population, reference models and a target for the privacy tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trustlab.core.models import build_model
from trustlab.core.seeding import seeded
from trustlab.core.training import train
from trustlab.privacy import ReferenceModels

N_POPULATION, N_FEATURES, N_CLASSES = 240, 6, 3
ARGUMENTS = {"in_features": N_FEATURES, "num_classes": N_CLASSES, "hidden": [32]}


@dataclass
class Population:
    """A noisy synthetic task: the population the reference models and the target train on."""

    x: np.ndarray
    y: np.ndarray
    z_x: np.ndarray  # population samples that no model trains on
    z_y: np.ndarray
    reference: ReferenceModels
    target: nn.Module
    member: np.ndarray  # which population rows the target trained on


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    teacher = np.random.default_rng(99).normal(size=(N_FEATURES, N_CLASSES))
    y = (x @ teacher + 2.0 * rng.normal(size=(n, N_CLASSES))).argmax(axis=1).astype(np.int64)
    return x, y


def train_target(x: np.ndarray, y: np.ndarray, member: np.ndarray, *, epochs: int) -> nn.Module:
    with seeded(12345):
        model = build_model("mlp", arguments=ARGUMENTS)
    train(
        model,
        data={"x": torch.from_numpy(x), "y": torch.from_numpy(y)},
        rows=torch.from_numpy(np.flatnonzero(member)),
        epochs=epochs,
        batch_size=32,
        seed=1,
        lr=1e-2,
    )
    return model.eval()


def make_population() -> Population:
    x, y = make_data(N_POPULATION, seed=0)
    z_x, z_y = make_data(100, seed=1)
    reference = ReferenceModels.train(
        architecture="mlp",
        arguments=ARGUMENTS,
        x=x,
        y=y,
        n_models=4,
        epochs=30,
        lr=1e-2,
        batch_size=32,
        seed=0,
    )
    member = np.random.default_rng(7).random(N_POPULATION) < 0.5
    target = train_target(x, y, member, epochs=30)
    return Population(x, y, z_x, z_y, reference, target, member)
