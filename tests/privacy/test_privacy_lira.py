"""Tests of LiRA against the paper's definition on hand-made reference confidences."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from privacy_hand import binary_logits, hand_reference
from privacy_population import Population
from scipy.stats import norm

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.metrics import auc
from trustlab.core.params import MSG_PARAM
from trustlab.privacy import LiRA
from trustlab.privacy._scores import MSG_CANDIDATE_INDEX, MSG_NO_MODELS, scaled_confidence
from trustlab.privacy.augment import MSG_NOT_IMAGES

# Four reference models, two candidates: candidate 0 is IN models 0 and 1, candidate 1 is IN
# models 2 and 3. Entry [model, candidate] is the reference model's scaled confidence.
MEMBERSHIP = [[1, 0], [1, 0], [0, 1], [0, 1]]
REFERENCE = np.array([[4.0, 0.5], [5.0, -0.5], [1.0, 3.0], [2.0, 5.0]])
TARGET = np.array([3.5, 1.0])
LABELS = torch.tensor([1, 1])


def _scores(**options: object) -> np.ndarray:
    attack = LiRA(reference=hand_reference(MEMBERSHIP), **options)  # type: ignore[arg-type]
    return attack.infer_from_logits(
        logits=binary_logits(TARGET),
        y=LABELS,
        reference_logits=binary_logits(REFERENCE),
        candidate_index=np.array([0, 1]),
    )


def _in_out() -> tuple[list[np.ndarray], list[np.ndarray]]:
    member = np.array(MEMBERSHIP, dtype=bool)
    ins = [REFERENCE[member[:, j], j] for j in range(2)]
    outs = [REFERENCE[~member[:, j], j] for j in range(2)]
    return ins, outs


def test_online_score_is_the_gaussian_log_likelihood_ratio() -> None:
    ins, outs = _in_out()
    expected = [
        norm.logpdf(TARGET[j], ins[j].mean(), ins[j].std())
        - norm.logpdf(TARGET[j], outs[j].mean(), outs[j].std())
        for j in range(2)
    ]
    np.testing.assert_allclose(_scores(), expected, rtol=1e-10)


def test_offline_score_is_the_one_sided_test() -> None:
    _, outs = _in_out()
    expected = [norm.logcdf((TARGET[j] - outs[j].mean()) / outs[j].std()) for j in range(2)]
    np.testing.assert_allclose(_scores(online=False), expected, rtol=1e-10)


def test_fixed_variance_pools_the_deviations() -> None:
    ins, outs = _in_out()
    pooled_in = np.sqrt(np.mean(np.concatenate([v - v.mean() for v in ins]) ** 2))
    pooled_out = np.sqrt(np.mean(np.concatenate([v - v.mean() for v in outs]) ** 2))
    expected = [
        norm.logpdf(TARGET[j], ins[j].mean(), pooled_in)
        - norm.logpdf(TARGET[j], outs[j].mean(), pooled_out)
        for j in range(2)
    ]
    np.testing.assert_allclose(_scores(fixed_variance=True), expected, rtol=1e-10)


def test_queries_are_averaged() -> None:
    attack = LiRA(reference=hand_reference(MEMBERSHIP), online=False)
    second = TARGET - 1.0
    two = attack.infer_from_logits(
        logits=torch.stack([binary_logits(TARGET), binary_logits(second)]),
        y=LABELS,
        reference_logits=torch.stack([binary_logits(REFERENCE)] * 2, dim=1),
        candidate_index=[0, 1],
    )
    one = _scores(online=False)
    other = attack.infer_from_logits(
        logits=binary_logits(second),
        y=LABELS,
        reference_logits=binary_logits(REFERENCE),
        candidate_index=[0, 1],
    )
    np.testing.assert_allclose(two, (one + other) / 2, rtol=1e-12)


def test_scaled_confidence_is_exact_for_confident_models() -> None:
    logits = torch.tensor([[0.0, 60.0, -5.0], [2.0, 1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    phi = scaled_confidence(logits, y)
    assert torch.isfinite(phi).all()
    assert phi[0] == pytest.approx(60.0 - float(torch.logsumexp(torch.tensor([0.0, -5.0]), 0)))
    p = torch.softmax(logits[1], 0)[0]
    assert phi[1] == pytest.approx(float(torch.log(p) - torch.log(1 - p)))


def test_online_needs_candidate_index() -> None:
    attack = LiRA(reference=hand_reference(MEMBERSHIP))
    message = MSG_NO_MODELS.format(index=0, which="IN", n_models=4, owner="online LiRA")
    with pytest.raises(DataError, match=re.escape(message)):
        attack.infer_from_logits(
            logits=binary_logits(TARGET), y=LABELS, reference_logits=binary_logits(REFERENCE)
        )


def test_candidate_index_out_of_range() -> None:
    attack = LiRA(reference=hand_reference(MEMBERSHIP))
    message = MSG_CANDIDATE_INDEX.format(n_population=2, problem="the position 2")
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        attack.infer_from_logits(
            logits=binary_logits(TARGET),
            y=LABELS,
            reference_logits=binary_logits(REFERENCE),
            candidate_index=[0, 2],
        )


def test_needs_reference_logits() -> None:
    with pytest.raises(ConfigurationError, match="needs reference_logits"):
        LiRA(reference=hand_reference(MEMBERSHIP)).infer_from_logits(
            logits=binary_logits(TARGET), y=LABELS
        )


def test_augmentations_make_queries(population: Population) -> None:
    attack = LiRA(reference=population.reference, augmentations=["hflip", "shift"])
    images = torch.rand(5, 1, 8, 8)
    queries = attack.queries(images)
    assert queries.shape == (10, 5, 1, 8, 8)
    torch.testing.assert_close(queries[0], images)
    torch.testing.assert_close(queries[1], images.flip(-1))
    message = MSG_NOT_IMAGES.format(name="hflip", shape=(240, 6))
    with pytest.raises(DataError, match=re.escape(message)):
        attack.infer(model=population.target, x=population.x, y=population.y)


def test_unknown_augmentation_is_refused_at_construction(population: Population) -> None:
    with pytest.raises(ConfigurationError) as info:
        LiRA(reference=population.reference, augmentations=["rotate"])
    assert str(info.value) == MSG_PARAM.format(
        name="augmentations",
        owner="LiRA",
        rule="None or a list of registered augmentation names",
        value=["rotate"],
    )


@pytest.mark.parametrize("online", [True, False])
def test_lira_finds_the_target_members(population: Population, online: bool) -> None:
    index = np.arange(len(population.y))
    attack = LiRA(reference=population.reference, online=online, fixed_variance=True)
    scores = attack.infer(
        model=population.target, x=population.x, y=population.y, candidate_index=index
    )
    assert np.isfinite(scores).all()
    assert auc(y_true=population.member, scores=scores) > 0.6
