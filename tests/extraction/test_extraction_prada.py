"""PRADA flags synthetic query patterns, not natural queries, and its state round-trips."""

from __future__ import annotations

import json

import pytest
import torch
from extraction_helpers import DigitsSplit
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.extraction.defences import PRADA


def predicted(victim: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return victim(x).argmax(dim=1)


def jacobian_like_queries(victim: nn.Module, seeds: torch.Tensor) -> torch.Tensor:
    """Papernot-style augmentation: each round adds x + 0.1 * sign(grad of the label's logit)."""
    queries = seeds.clone()
    for _ in range(4):
        x = queries.clone().requires_grad_(True)
        logits = victim(x)
        labels = logits.argmax(dim=1)
        logits.gather(1, labels[:, None]).sum().backward()
        assert x.grad is not None
        queries = torch.cat([queries, (queries + 0.1 * x.grad.sign()).clamp(0, 1)])
    return queries.detach()


def test_natural_digits_are_not_flagged(victim: nn.Module, digits: DigitsSplit) -> None:
    detector = PRADA()
    queries = digits.x_pool[:400]
    verdict = detector.observe(inputs=queries, client_id="a", labels=predicted(victim, queries))
    assert verdict.n_queries == 400
    assert verdict.statistic is not None and verdict.statistic >= 0.9
    assert not verdict.flagged


def test_jacobian_augmented_queries_are_flagged(victim: nn.Module, digits: DigitsSplit) -> None:
    detector = PRADA()
    queries = jacobian_like_queries(victim, digits.x_pool[:25])
    verdict = detector.observe(inputs=queries, client_id="a", labels=predicted(victim, queries))
    assert verdict.n_queries == 400
    assert verdict.statistic is not None and verdict.statistic < 0.9
    assert verdict.flagged
    assert "below the threshold" in verdict.reason


def test_clients_are_watched_separately(victim: nn.Module, digits: DigitsSplit) -> None:
    detector = PRADA()
    attack = jacobian_like_queries(victim, digits.x_pool[:25])
    natural = digits.x_pool[:400]
    assert detector.observe(inputs=attack, client_id="thief", labels=predicted(victim, attack))
    honest = detector.observe(inputs=natural, client_id="honest", labels=predicted(victim, natural))
    assert not honest.flagged
    assert detector.verdict("thief").flagged
    detector.reset("thief")
    assert detector.verdict("thief").n_queries == 0


def test_too_few_queries_give_no_statistic(digits: DigitsSplit) -> None:
    verdict = PRADA().observe(inputs=digits.x_pool[:50], client_id="a", labels=digits.y_pool[:50])
    assert verdict.statistic is None and not verdict.flagged and verdict.n_queries == 50


def test_growing_set_and_distances_by_hand() -> None:
    detector = PRADA()
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [3.0, 4.0], [6.0, 8.0], [0.0, 0.5]])
    detector.observe(inputs=x, client_id="a", labels=torch.zeros(5, dtype=torch.int64))
    state = detector.state_dict("a")["classes"]["0"]
    # Query 2 joins at distance 5 (threshold 0 -> mean-std of [0, 5] = 0); query 3 is at
    # distance 0 (not added); query 4 joins at 5 and sets the threshold to
    # max(0, mean([0, 5, 5]) - std([0, 5, 5])) = 0.976; query 5 is at distance 0.5, below it.
    assert state["distances"] == [5.0, 0.0, 5.0, 0.5]
    assert state["growing_set"] == [[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]
    spread = torch.tensor([0.0, 5.0, 5.0], dtype=torch.float64)
    expected = float(spread.mean() - spread.std(unbiased=False))
    assert state["threshold"] == pytest.approx(expected)


def test_state_round_trips_through_json(victim: nn.Module, digits: DigitsSplit) -> None:
    queries = jacobian_like_queries(victim, digits.x_pool[:25])
    labels = predicted(victim, queries)
    whole = PRADA()
    expected = whole.observe(inputs=queries, client_id="a", labels=labels)
    first = PRADA()
    first.observe(inputs=queries[:200], client_id="a", labels=labels[:200])
    saved = json.loads(json.dumps(first.state_dict("a")))
    second = PRADA()
    second.load_state_dict("a", saved)
    got = second.observe(inputs=queries[200:], client_id="a", labels=labels[200:])
    assert got == expected
    assert second.state_dict("a") == whole.state_dict("a")


def test_bad_state_and_inputs_change_nothing(digits: DigitsSplit) -> None:
    detector = PRADA()
    detector.observe(inputs=digits.x_pool[:20], client_id="a", labels=digits.y_pool[:20])
    before = detector.state_dict("a")
    broken = dict(before, classes={"1": {"growing_set": [], "distances": []}})
    with pytest.raises(DataError, match="state for client 'a' is malformed"):
        detector.load_state_dict("a", broken)
    with pytest.raises(DataError, match="inputs with 3 values per query"):
        detector.observe(inputs=torch.zeros(2, 3), client_id="a", labels=torch.zeros(2).long())
    with pytest.raises(DataError, match="same number of examples"):
        detector.observe(inputs=digits.x_pool[:3], client_id="a", labels=digits.y_pool[:2])
    assert detector.state_dict("a") == before


def test_bad_parameters_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError) as error:
        PRADA(threshold=1.5)
    assert str(error.value) == (
        "The 'threshold' parameter of PRADA must be a finite float in (0, 1]. Got 1.5 instead."
    )
    with pytest.raises(ConfigurationError, match="'min_queries' parameter of PRADA"):
        PRADA(min_queries=2)
