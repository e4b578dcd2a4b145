"""Empirical privacy auditing: Clopper-Pearson intervals, the TPR/FPR bound and the one-run audit.

Hand cases check each formula against its closed form; the end-to-end tests audit a model
trained without DP on a small set (a clearly positive bound) and a DP-SGD model (a bound below
the accountant's epsilon).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats
from sklearn.datasets import load_digits

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.models import build_model
from trustlab.core.params import MSG_PARAM
from trustlab.core.seeding import seed_everything
from trustlab.core.training import fit_classifier, predict_logits
from trustlab.privacy.audit import (
    clopper_pearson,
    draw_canaries,
    epsilon_lower_bound,
    one_run_audit,
    one_run_p_value,
)
from trustlab.privacy.audit.one_run import MSG_NO_GUESS, MSG_TOO_MANY_GUESSES

PERFECT_LABELS = [1] * 50 + [0] * 50
PERFECT_SCORES = [1.0] * 50 + [0.0] * 50


# Clopper-Pearson ---------------------------------------------------------------------------


def test_clopper_pearson_matches_the_beta_quantiles() -> None:
    low, high = clopper_pearson(3, 10, confidence=0.95)
    assert float(low) == pytest.approx(stats.beta.ppf(0.025, 3, 8))
    assert float(high) == pytest.approx(stats.beta.ppf(0.975, 4, 7))
    assert float(low) == pytest.approx(0.0667, abs=1e-4)
    assert float(high) == pytest.approx(0.6525, abs=1e-4)


def test_clopper_pearson_at_the_edges() -> None:
    low, high = clopper_pearson([0, 10], [10, 10])
    assert low[0] == 0.0
    assert high[0] == pytest.approx(1 - 0.025 ** (1 / 10))
    assert low[1] == pytest.approx(0.025 ** (1 / 10))
    assert high[1] == 1.0


def test_clopper_pearson_covers_at_least_its_confidence() -> None:
    rng = np.random.default_rng(0)
    draws = rng.binomial(40, 0.3, size=4000)
    low, high = clopper_pearson(draws, 40, confidence=0.9)
    assert np.mean((low <= 0.3) & (high >= 0.3)) >= 0.9


def test_clopper_pearson_checks_its_confidence() -> None:
    with pytest.raises(ConfigurationError) as info:
        clopper_pearson(1, 2, confidence=1.5)
    assert str(info.value) == MSG_PARAM.format(
        name="confidence", owner="clopper_pearson", rule="a finite float in (0, 1)", value=1.5
    )


# The TPR/FPR bound (Jagielski et al.) -------------------------------------------------------


def test_bound_of_a_perfect_test_is_the_closed_form() -> None:
    bound = epsilon_lower_bound(y_true=PERFECT_LABELS, scores=PERFECT_SCORES)
    tpr_low = 0.025 ** (1 / 50)  # Clopper-Pearson lower end of 50 / 50
    fpr_high = 1 - 0.025 ** (1 / 50)  # upper end of 0 / 50
    assert bound.epsilon == pytest.approx(math.log(tpr_low / fpr_high))
    assert (bound.tpr, bound.fpr, bound.threshold) == (1.0, 0.0, 1.0)
    assert bound.tpr_low == pytest.approx(tpr_low)
    assert bound.fpr_high == pytest.approx(fpr_high)
    assert (bound.n_members, bound.n_non_members) == (50, 50)


def test_delta_and_confidence_lower_the_bound() -> None:
    plain = epsilon_lower_bound(y_true=PERFECT_LABELS, scores=PERFECT_SCORES).epsilon
    with_delta = epsilon_lower_bound(y_true=PERFECT_LABELS, scores=PERFECT_SCORES, delta=0.1)
    surer = epsilon_lower_bound(y_true=PERFECT_LABELS, scores=PERFECT_SCORES, confidence=0.99)
    tpr_low, fpr_high = 0.025 ** (1 / 50), 1 - 0.025 ** (1 / 50)
    assert with_delta.epsilon == pytest.approx(math.log((tpr_low - 0.1) / fpr_high))
    assert with_delta.epsilon < plain
    assert surer.epsilon < plain


def test_the_symmetric_form_counts() -> None:
    # Every non-member scores below every member but half the members tie with them: the
    # non-member side (TNR over FNR) gives the bound.
    y_true = [1] * 100 + [0] * 100
    scores = [1.0] * 50 + [0.0] * 50 + [0.0] * 100
    bound = epsilon_lower_bound(y_true=y_true, scores=scores, threshold=1.0)
    tpr_low = float(clopper_pearson(50, 100)[0])
    fpr_high = float(clopper_pearson(0, 100)[1])
    assert bound.epsilon == pytest.approx(
        max(math.log(tpr_low / fpr_high), math.log((1 - fpr_high) / (1 - tpr_low)))
    )
    assert bound.direction == "members"


def test_an_uninformative_test_gives_almost_nothing() -> None:
    rng = np.random.default_rng(0)
    y_true, scores = rng.integers(0, 2, 1000), rng.normal(size=1000)
    # The best of 1,000 thresholds chosen on the same trials is optimistic, but only slightly.
    assert epsilon_lower_bound(y_true=y_true, scores=scores).epsilon < 0.2
    assert epsilon_lower_bound(y_true=y_true, scores=scores, threshold=0.0).epsilon == 0.0


def test_a_fixed_threshold_uses_that_rule_only() -> None:
    bound = epsilon_lower_bound(y_true=PERFECT_LABELS, scores=PERFECT_SCORES, threshold=2.0)
    assert bound.epsilon == 0.0
    assert bound.threshold == 2.0


def test_bound_refuses_bad_trials() -> None:
    with pytest.raises(DataError, match="same number of examples"):
        epsilon_lower_bound(y_true=[0, 1, 1], scores=[0.0, 1.0])
    with pytest.raises(DataError, match="no positive examples"):
        epsilon_lower_bound(y_true=[0, 0], scores=[0.0, 1.0])
    with pytest.raises(DataError, match="NaN"):
        epsilon_lower_bound(y_true=[0, 1], scores=[0.0, float("nan")])
    with pytest.raises(ConfigurationError, match="'delta' parameter of epsilon_lower_bound"):
        epsilon_lower_bound(y_true=[0, 1], scores=[0.0, 1.0], delta=1.0)


# The one-run audit (Steinke et al.) --------------------------------------------------------


def test_p_value_is_the_binomial_tail_without_delta() -> None:
    assert one_run_p_value(
        epsilon=0.0, delta=0.0, n_canaries=10, guesses=10, correct=10
    ) == pytest.approx(0.5**10)
    q = math.exp(1.0) / (1 + math.exp(1.0))
    assert one_run_p_value(
        epsilon=1.0, delta=0.0, n_canaries=100, guesses=30, correct=20
    ) == pytest.approx(stats.binom.sf(19, 30, q))


def test_p_value_delta_term_is_the_papers() -> None:
    eps, delta, m, r, v = 1.0, 1e-3, 100, 30, 20
    q = math.exp(eps) / (1 + math.exp(eps))
    alpha = max(sum(stats.binom.pmf(j, r, q) for j in range(v - i, v)) / i for i in range(1, v + 1))
    expected = stats.binom.sf(v - 1, r, q) + 2 * m * delta * alpha
    assert one_run_p_value(
        epsilon=eps, delta=delta, n_canaries=m, guesses=r, correct=v
    ) == pytest.approx(expected)


def test_all_correct_guesses_give_the_closed_form() -> None:
    audit = one_run_audit(included=PERFECT_LABELS, scores=PERFECT_SCORES, k_plus=20, k_minus=20)
    q = 0.05 ** (1 / 40)  # P[Binomial(40, q) >= 40] = q**40 = 0.05
    assert audit.correct == 40
    assert audit.guesses == 40
    assert audit.epsilon == pytest.approx(math.log(q / (1 - q)), abs=1e-5)


def test_guesses_are_the_top_and_bottom_scores() -> None:
    included = [1, 0, 1, 0, 1, 0]
    scores = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    audit = one_run_audit(included=included, scores=scores, k_plus=2, k_minus=2)
    # Top two: canaries 0 (in, right) and 1 (out, wrong); bottom two: 4 (in, wrong), 5 (right).
    assert audit.correct == 2


def test_chance_guesses_give_zero() -> None:
    rng = np.random.default_rng(1)
    included = draw_canaries(1000, seed=3)
    audit = one_run_audit(included=included, scores=rng.normal(size=1000), k_plus=100)
    assert audit.epsilon == 0.0


def test_the_delta_term_lowers_the_bound() -> None:
    plain = one_run_audit(included=PERFECT_LABELS, scores=PERFECT_SCORES, k_plus=30)
    loose = one_run_audit(included=PERFECT_LABELS, scores=PERFECT_SCORES, k_plus=30, delta=1e-3)
    assert 0 < loose.epsilon < plain.epsilon


def test_draw_canaries_is_seeded_and_fair() -> None:
    first = draw_canaries(2000, seed=7)
    assert first.dtype == np.bool_
    assert np.array_equal(first, draw_canaries(2000, seed=7))
    assert 0.45 < first.mean() < 0.55


def test_one_run_refuses_bad_guesses() -> None:
    with pytest.raises(ConfigurationError) as info:
        one_run_audit(included=[0, 1], scores=[0.0, 1.0], k_plus=2, k_minus=1)
    assert str(info.value) == MSG_TOO_MANY_GUESSES.format(guesses=3, m=2)
    with pytest.raises(ConfigurationError) as info:
        one_run_audit(included=[0, 1], scores=[0.0, 1.0], k_plus=0)
    assert str(info.value) == MSG_NO_GUESS
    with pytest.raises(ConfigurationError, match="'k_plus' parameter of one_run_audit"):
        one_run_audit(included=[0, 1], scores=[0.0, 1.0], k_plus=-1)


# End to end: a model without DP and a DP-SGD model ------------------------------------------

MLP = {"in_features": 64, "num_classes": 10, "hidden": [64]}


def _canary_setup() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """200 clean digits plus 200 mislabelled canaries, each included with probability 1/2."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32).reshape(-1, 64)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    clean, canaries = order[:200], order[200:400]
    canary_x = x[canaries]
    canary_y = (y[canaries] + rng.integers(1, 10, size=len(canaries))) % 10
    included = draw_canaries(len(canaries), seed=1)
    train_x = np.concatenate([x[clean], canary_x[included]])
    train_y = np.concatenate([y[clean], canary_y[included]])
    return train_x, train_y, canary_x, canary_y, included


def _scores(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    logits = predict_logits(model, x)
    return -F.cross_entropy(logits, torch.from_numpy(y), reduction="none").numpy()


@pytest.mark.slow
def test_a_model_without_dp_gets_a_clearly_positive_bound() -> None:
    train_x, train_y, canary_x, canary_y, included = _canary_setup()
    seed_everything(0)
    model = build_model("mlp", arguments=MLP)
    fit_classifier(model, train_x, train_y, epochs=40, lr=1e-2, batch_size=64)
    scores = _scores(model, canary_x, canary_y)
    one_run = one_run_audit(included=included, scores=scores, k_plus=20, k_minus=20)
    threshold = epsilon_lower_bound(y_true=included, scores=scores)
    assert one_run.epsilon > 1.0
    assert threshold.epsilon > 1.0


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("opacus") is None, reason="needs the 'dp' extra")
def test_a_dp_sgd_model_audits_below_its_accountant_epsilon() -> None:
    from trustlab.privacy import DPSGD

    train_x, train_y, canary_x, canary_y, included = _canary_setup()
    delta = 1e-3
    trainer = DPSGD(
        architecture="mlp", arguments=MLP, epsilon=2.0, delta=delta, epochs=10, batch_size=64
    ).fit(x=train_x, y=train_y)
    spent = trainer.report_.epsilon
    scores = _scores(trainer.model_, canary_x, canary_y)
    one_run = one_run_audit(included=included, scores=scores, k_plus=20, k_minus=20, delta=delta)
    threshold = epsilon_lower_bound(y_true=included, scores=scores, delta=delta)
    assert spent <= 2.0 + 1e-2
    assert one_run.epsilon < spent
    assert threshold.epsilon < spent
