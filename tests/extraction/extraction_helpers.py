"""Helpers shared by the extraction tests: the digits split and small MLPs."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from torch import nn

from trustlab.core.models import build_model
from trustlab.core.training import predict_logits, seed_everything


@dataclasses.dataclass(frozen=True)
class DigitsSplit:
    """Flattened digits in [0, 1]: the victim's training set, an attacker pool and a test set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_pool: torch.Tensor
    y_pool: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_mlp(hidden: int = 64, seed: int = 0) -> nn.Module:
    seed_everything(seed)
    return build_model("mlp", arguments={"in_features": 64, "num_classes": 10, "hidden": [hidden]})


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's raw outputs (logits or embeddings) on ``x``, computed once for the metrics."""
    return predict_logits(model, x)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
