"""Extraction attacks report their query loop, and say when the pool is smaller than the budget."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from trustlab.core.progress import ProgressEvent
from trustlab.extraction import KnockoffNets, LocalOracle
from trustlab.extraction.knockoff import MSG_POOL_TOO_SMALL


def _victim() -> nn.Module:
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def _pool(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, generator=generator), torch.randint(0, 3, (n,), generator=generator)


@pytest.mark.parametrize("sampling", ["random", "adaptive"])
def test_knockoff_says_when_its_pool_is_smaller_than_the_budget(sampling: str) -> None:
    pool, labels = _pool(12)
    attack = KnockoffNets(sampling=sampling, pool=pool, pool_labels=labels, round_size=5, epochs=1)
    with pytest.warns(UserWarning, match="asked for 30 queries but its pool has only 12 rows"):
        result = attack.extract(
            oracle=LocalOracle(model=_victim()), surrogate=nn.Linear(4, 3), budget=30
        )
    assert result.queries_used == 12
    assert result.notes == [MSG_POOL_TOO_SMALL.format(budget=30, n_pool=12)]


def test_knockoff_within_its_pool_is_silent() -> None:
    pool, _ = _pool(12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = KnockoffNets(pool=pool, epochs=1).extract(
            oracle=LocalOracle(model=_victim()), surrogate=nn.Linear(4, 3), budget=12
        )
    assert result.notes == [] and result.queries_used == 12


def test_extract_reports_queries_and_training_epochs() -> None:
    pool, labels = _pool(20)
    events: list[ProgressEvent] = []
    KnockoffNets(
        sampling="adaptive", pool=pool, pool_labels=labels, round_size=8, epochs=2
    ).extract(
        oracle=LocalOracle(model=_victim()),
        surrogate=nn.Linear(4, 3),
        budget=20,
        progress=events.append,
    )
    queries = [(e.done, e.total) for e in events if e.stage == "queries"]
    assert queries == [(8, 20), (16, 20), (20, 20)]
    assert [e.done for e in events if e.stage == "epoch"] == [1, 2] * 3
