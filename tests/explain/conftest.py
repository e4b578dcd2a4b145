"""Small models and inputs shared by the explainability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from trustlab.core.models import build_model


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Small models run fastest on one thread of a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def linear() -> nn.Module:
    """A linear classifier: gradient x input is its exact decomposition."""
    torch.manual_seed(0)
    return nn.Linear(6, 3)


@pytest.fixture
def canvas_model() -> nn.Module:
    """An untrained canvas CNN (width 4) on 12x12 images."""
    torch.manual_seed(0)
    return build_model("canvas-cnn", arguments={"width": 4})


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(3, 1, 12, 12, generator=torch.Generator().manual_seed(1))
