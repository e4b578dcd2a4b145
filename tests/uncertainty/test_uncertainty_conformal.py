"""Split conformal prediction: the finite-sample quantile, the coverage guarantee checked
statistically over many random splits, class- and group-conditional coverage, reports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.uncertainty import (
    APS,
    CONFORMAL_METHODS,
    LAC,
    RAPS,
    conformal_quantile,
    conformal_rank,
    conformal_report,
    empirical_coverage,
    mean_set_size,
)
from trustlab.uncertainty._inputs import softmax
from trustlab.uncertainty.conformal.base import MSG_GROUPS_NEEDED

#: Calibration and test examples per split, and the number of random splits.
N_CAL, N_TEST, N_SPLITS = 200, 300, 150
ALPHA = 0.1
#: The guarantee is E[coverage] >= 1 - alpha over splits. The mean coverage of N_SPLITS splits
#: has a standard deviation of about sqrt(a(1-a)/N_CAL + a(1-a)/N_TEST) / sqrt(N_SPLITS)
#: ~ 0.0022 here; the tolerance is 0.01, about 4.5 standard deviations, so a correct method
#: fails with probability < 1e-5 while an off-by-a-few-ranks quantile is caught. Continuous
#: scores also bound the coverage above by 1 - alpha + 1 / (N_CAL + 1).
TOLERANCE = 0.01


def _known_model(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities of a model whose scores are known: labels are drawn from them, so the
    model is exactly calibrated; a group attribute makes one group harder (flatter)."""
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 2, n)
    scale = np.where(groups == 0, 3.0, 1.0)[:, None]
    probs = softmax(rng.normal(size=(n, k)) * scale)
    y = (probs.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return probs, y, groups


def _coverages(method_factory, *, conditional: str = "marginal", seed: int = 0):
    probs, y, groups = _known_model(5000, 10, seed)
    rng = np.random.default_rng(seed + 1)
    overall, per_class, per_group, sizes = [], [], [], []
    for split in range(N_SPLITS):
        order = rng.permutation(len(y))
        cal, test = order[:N_CAL], order[N_CAL : N_CAL + N_TEST]
        method = method_factory(conditional, split)
        method.fit(probs=probs[cal], y=y[cal], groups=groups[cal])
        sets = method.predict(probs=probs[test], groups=groups[test])
        covered = sets[np.arange(len(test)), y[test]]
        overall.append(covered.mean())
        per_class.append([covered[y[test] == k].mean() for k in range(3)])
        per_group.append([covered[groups[test] == g].mean() for g in range(2)])
        sizes.append(sets.sum(axis=1).mean())
    return (
        float(np.mean(overall)),
        np.nanmean(per_class, axis=0),
        np.mean(per_group, axis=0),
        float(np.mean(sizes)),
    )


def test_rank_and_quantile() -> None:
    assert conformal_rank(99, 0.1) == 90  # (99 + 1) * 0.9 = 90 exactly
    assert conformal_rank(100, 0.1) == 91
    scores = np.arange(1, 100, dtype=float)  # 1..99
    assert conformal_quantile(scores, alpha=0.1) == 90.0
    assert conformal_quantile(np.arange(1, 101, dtype=float), alpha=0.1) == 91.0
    assert conformal_quantile([0.5] * 5, alpha=0.1) == math.inf
    with pytest.raises(ConfigurationError, match="'alpha' parameter"):
        conformal_quantile([1.0], alpha=1.5)
    with pytest.raises(DataError, match="NaN"):
        conformal_quantile([1.0, float("nan")], alpha=0.5)


@pytest.mark.parametrize(
    "factory",
    [
        lambda c, s: LAC(alpha=ALPHA, conditional=c),
        lambda c, s: APS(alpha=ALPHA, conditional=c, seed=s, allow_empty=True),
        lambda c, s: APS(alpha=ALPHA, conditional=c, randomized=False, allow_empty=True),
        lambda c, s: RAPS(alpha=ALPHA, conditional=c, lam=0.1, k_reg=1, seed=s),
        lambda c, s: APS(alpha=ALPHA, conditional=c, seed=s),
    ],
    ids=["lac", "aps", "aps-deterministic", "raps", "aps-never-empty"],
)
def test_marginal_coverage_guarantee_over_random_splits(factory) -> None:
    coverage, _, _, size = _coverages(factory)
    assert coverage >= 1 - ALPHA - TOLERANCE
    if factory("marginal", 0).allow_empty:
        # filling empty sets with the top class (allow_empty=False) only adds coverage
        assert coverage <= 1 - ALPHA + 1 / (N_CAL + 1) + TOLERANCE
    assert 1.0 <= size < 10.0


def test_lac_gives_smaller_sets_than_aps() -> None:
    lac = _coverages(lambda c, s: LAC(alpha=ALPHA))[3]
    aps = _coverages(lambda c, s: APS(alpha=ALPHA, seed=s))[3]
    assert lac < aps


def test_class_conditional_coverage_holds_per_class() -> None:
    _, per_class, _, _ = _coverages(
        lambda c, s: LAC(alpha=ALPHA, conditional=c), conditional="class"
    )
    # each class has about N_CAL / 10 calibration examples; the guarantee holds per class,
    # averaged over splits (the per-class mean has a larger spread: tolerance 0.03).
    assert (per_class >= 1 - ALPHA - 0.03).all()


def test_group_conditional_coverage_holds_where_marginal_fails() -> None:
    factory = lambda c, s: LAC(alpha=ALPHA, conditional=c)  # noqa: E731
    _, _, marginal_groups, _ = _coverages(factory, conditional="marginal")
    _, _, conditional_groups, _ = _coverages(
        lambda c, s: LAC(alpha=ALPHA, conditional="group"), conditional="group"
    )
    assert marginal_groups.min() < 1 - ALPHA - TOLERANCE  # the flat group is under-covered
    assert (conditional_groups >= 1 - ALPHA - 0.02).all()


def test_aps_scores_by_hand() -> None:
    probs = np.array([[0.5, 0.3, 0.2]])
    aps = APS(randomized=False)
    np.testing.assert_allclose(
        aps.label_scores(probs, rng=np.random.default_rng(0)), [[0.5, 0.8, 1.0]]
    )
    raps = RAPS(randomized=False, lam=0.1, k_reg=1)
    np.testing.assert_allclose(
        raps.label_scores(probs, rng=np.random.default_rng(0)), [[0.5, 0.9, 1.2]]
    )
    np.testing.assert_allclose(
        LAC().label_scores(probs, rng=np.random.default_rng(0)), [[0.5, 0.7, 0.8]]
    )


def test_sets_are_reproducible_and_never_empty_by_default() -> None:
    probs, y, _ = _known_model(600, 10, seed=3)
    first = APS(alpha=0.3, seed=1).fit(probs=probs[:300], y=y[:300]).predict(probs=probs[300:])
    again = APS(alpha=0.3, seed=1).fit(probs=probs[:300], y=y[:300]).predict(probs=probs[300:])
    np.testing.assert_array_equal(first, again)
    assert first.any(axis=1).all()


def test_groups_required_and_unknown_groups_refused() -> None:
    probs, y, groups = _known_model(200, 4, seed=4)
    method = LAC(conditional="group")
    with pytest.raises(ConfigurationError, match="pass groups="):
        method.fit(probs=probs, y=y)
    assert "conditional='group'" in MSG_GROUPS_NEEDED
    method.fit(probs=probs, y=y, groups=groups)
    with pytest.raises(DataError, match="group the calibration split did not have"):
        method.predict(probs=probs[:3], groups=[0, 1, 7])
    with pytest.raises(ConfigurationError, match="not fitted yet"):
        LAC().predict(probs=probs)


def test_registry_builds_every_method() -> None:
    assert CONFORMAL_METHODS.names() == ["aps", "lac", "raps"]
    probs, y, _ = _known_model(300, 5, seed=5)
    for name in CONFORMAL_METHODS.names():
        method = CONFORMAL_METHODS.build(name, {"alpha": 0.2})
        sets = method.fit(probs=probs[:200], y=y[:200]).predict(probs=probs[200:])
        assert sets.shape == (100, 5) and sets.dtype == bool


def test_report_overall_per_class_and_group() -> None:
    sets = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    y = np.array([0, 1, 0, 1])
    report = conformal_report(sets=sets, y_true=y, groups=["a", "a", "b", "b"], n_resamples=50)
    assert report.overall.coverage.estimate == 0.5 == empirical_coverage(sets=sets, y_true=y)
    assert report.overall.mean_size.estimate == 1.0 == mean_set_size(sets=sets)
    assert report.by_group["a"].coverage.estimate == 1.0
    assert report.by_group["b"].coverage.estimate == 0.0
    assert report.by_class[1].n == 2
    assert report.empty_fraction == 0.25
    assert report.worst_group_coverage() == 0.0
    with pytest.raises(DataError, match="only 0 and 1"):
        mean_set_size(sets=[[0, 2]])


def test_intersectional_groups_as_the_fairness_pillar_names_them() -> None:
    sets = np.array([[1, 0], [1, 1], [0, 1], [1, 0]])
    y = np.array([0, 1, 0, 0])
    groups = {"sex": ["F", "F", "M", "M"], "race": ["A", "B", "A", "A"]}
    report = conformal_report(sets=sets, y_true=y, groups=groups, n_resamples=20)
    assert sorted(report.by_group) == ["sex=F, race=A", "sex=F, race=B", "sex=M, race=A"]
    assert report.by_group["sex=M, race=A"].coverage.estimate == 0.5
    probs = np.full((4, 2), 0.5)
    lac = LAC(alpha=0.5, conditional="group").fit(probs=probs, y=[0, 1, 0, 1], groups=groups)
    assert set(lac.group_quantiles_) == set(report.by_group)
