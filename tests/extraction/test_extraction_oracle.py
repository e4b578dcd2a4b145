"""Oracles answer in each output mode, apply defences and enforce budgets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from extraction_helpers import DigitsSplit
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError, TrustlabError
from trustlab.extraction import BudgetExhaustedError, LocalOracle, QueryClient, RemoteOracle
from trustlab.extraction.defences import ReverseSigmoid, Rounding
from trustlab.extraction.oracle import MSG_BUDGET, MSG_TOP_K


def test_output_modes(victim: nn.Module, digits: DigitsSplit) -> None:
    x = digits.x_test[:30]
    with torch.no_grad():
        logits = victim(x)
    probs = LocalOracle(model=victim).query(x)
    assert torch.allclose(probs, F.softmax(logits, dim=1), atol=1e-6)
    labels = LocalOracle(model=victim, output="labels").query(x.numpy())
    assert labels.dtype == torch.int64 and torch.equal(labels, logits.argmax(dim=1))
    top = LocalOracle(model=victim, output="top-k", top_k=2).query(x)
    assert torch.equal((top > 0).sum(dim=1), torch.full((30,), 2))
    assert torch.equal(top.max(dim=1).values, probs.max(dim=1).values)
    embeddings = LocalOracle(model=victim, output="embeddings").query(x)
    assert torch.allclose(embeddings, logits, atol=1e-6)


def test_defences_are_applied_before_the_answer_is_formed(
    victim: nn.Module, digits: DigitsSplit
) -> None:
    x = digits.x_test[:30]
    clean = LocalOracle(model=victim).query(x)
    rounded = LocalOracle(model=victim, defence=Rounding(decimals=1)).query(x)
    assert torch.allclose(rounded, torch.round(clean, decimals=1), atol=1e-6)
    defence = ReverseSigmoid(beta=0.7, gamma=0.5)
    deceptive = LocalOracle(model=victim, defence=defence).query(x)
    assert torch.equal(deceptive.argmax(dim=1), clean.argmax(dim=1))
    assert not torch.allclose(deceptive, clean, atol=1e-2)
    with pytest.raises(ConfigurationError, match="cannot defend output='embeddings'"):
        LocalOracle(model=victim, output="embeddings", defence=defence)


def test_a_refused_batch_costs_nothing(victim: nn.Module, digits: DigitsSplit) -> None:
    oracle = LocalOracle(model=victim, output="labels", budget=50)
    oracle.query(digits.x_test[:30])
    with pytest.raises(BudgetExhaustedError) as error:
        oracle.query(digits.x_test[:21])
    assert isinstance(error.value, TrustlabError) and error.value.status_code == 429
    assert str(error.value) == MSG_BUDGET.format(n=21, used=30, budget=50, remaining=20)
    assert oracle.queries_used == 30 and oracle.queries_remaining == 20
    oracle.query(digits.x_test[:20])
    assert oracle.queries_remaining == 0
    with pytest.raises(BudgetExhaustedError):
        oracle.query(digits.x_test[:1])
    assert [r.batch_size for r in oracle.log] == [30, 20]
    assert [r.cumulative for r in oracle.log] == [30, 50]
    assert oracle.log[0].time <= oracle.log[1].time and oracle.log[0].seconds >= 0


def test_bad_queries_cost_nothing(victim: nn.Module) -> None:
    oracle = LocalOracle(model=victim, budget=10)
    with pytest.raises(DataError, match="NaN"):
        oracle.query(torch.full((2, 64), float("nan")))
    with pytest.raises(DataError, match="x is empty"):
        oracle.query(torch.zeros(0, 64))
    assert oracle.queries_used == 0 and oracle.log == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"output": "logits"},
            "The 'output' parameter of LocalOracle must be one of 'probabilities', 'labels', "
            "'top-k', 'embeddings'. Got 'logits' instead.",
        ),
        ({"output": "top-k"}, MSG_TOP_K.format(value=None, output="top-k")),
        ({"top_k": 3}, MSG_TOP_K.format(value=3, output="probabilities")),
        (
            {"budget": -1},
            "The 'budget' parameter of LocalOracle must be None or an int >= 0. Got -1 instead.",
        ),
        (
            {"batch_size": 0},
            "The 'batch_size' parameter of LocalOracle must be an int >= 1. Got 0 instead.",
        ),
        (
            {"defence": "rounding"},
            "The 'defence' parameter of LocalOracle must be None or an OutputDefence such as "
            "Rounding(). Got 'rounding' instead.",
        ),
        (
            {"client_id": ""},
            "The 'client_id' parameter of LocalOracle must be a non-empty str. Got '' instead.",
        ),
    ],
)
def test_bad_parameters_fail_at_construction(
    victim: nn.Module, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        LocalOracle(model=victim, **kwargs)  # type: ignore[arg-type]
    assert str(error.value) == message


def test_remote_oracle_checks_its_parameters_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="'client' parameter of RemoteOracle"):
        RemoteOracle(client=object(), task_id="steal-digits")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'task_id' parameter of RemoteOracle"):
        RemoteOracle(client=FakeArena(nn.Linear(2, 2), budget=1), task_id="")


@dataclasses.dataclass
class Answer:
    outputs: np.ndarray
    remaining: int | None


class FakeArena:
    """Answers like the arena: the victim's probabilities and the budget left."""

    def __init__(self, victim: nn.Module, budget: int) -> None:
        self.victim = victim
        self.left = budget
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def query(self, task_id: str, x: np.ndarray) -> Answer:
        self.calls.append((task_id, x.shape))
        self.left -= len(x)
        with torch.no_grad():
            probs = F.softmax(self.victim(torch.from_numpy(x)), dim=1).numpy()
        return Answer(outputs=probs, remaining=self.left)


def test_remote_oracle_learns_the_budget_and_refuses_locally(
    victim: nn.Module, digits: DigitsSplit
) -> None:
    arena = FakeArena(victim, budget=40)
    assert isinstance(arena, QueryClient)
    oracle = RemoteOracle(client=arena, task_id="steal-digits")
    assert oracle.budget is None and oracle.queries_remaining is None
    answer = oracle.query(digits.x_test[:25].numpy().astype(np.float64))
    assert answer.shape == (25, 10) and answer.dtype == torch.float32
    assert arena.calls == [("steal-digits", (25, 64))]
    assert oracle.budget == 40 and oracle.queries_remaining == 15
    with pytest.raises(BudgetExhaustedError):
        oracle.query(digits.x_test[:16])
    assert len(arena.calls) == 1 and oracle.queries_used == 25
