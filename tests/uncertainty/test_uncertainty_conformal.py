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
from trustlab.uncertainty.conformal.base import MSG_GROUPS_NEEDED, ranked

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


def _reference_sets(method, cal, y_cal, test, groups_cal, groups_test):
    """Calibration scores and sets computed as the definition reads, in label order: a
    stable argsort of each row, ``numpy.cumsum``, the draws of the same seeded streams."""

    def scores(probs, stream):
        n, k = probs.shape
        order = np.argsort(-probs, axis=1, kind="stable")
        rows = np.arange(n)[:, None]
        cumulative = np.empty_like(probs)
        cumulative[rows, order] = np.cumsum(probs[rows, order], axis=1)
        rank = np.empty(order.shape, dtype=np.int64)
        rank[rows, order] = np.arange(1, k + 1)
        draws = np.random.default_rng([method.seed, stream]).random(n)
        u = draws if method.randomized else np.zeros(n)
        out = cumulative - u[:, None] * probs
        if isinstance(method, RAPS):
            out = out + method.lam * np.maximum(0, rank - method.k_reg)
        return out

    cal_scores = scores(cal, 0)[np.arange(len(y_cal)), y_cal]
    test_scores = scores(test, 1)
    if method.conditional == "marginal":
        limits = np.full((len(test), 1), conformal_quantile(cal_scores, alpha=method.alpha))
    elif method.conditional == "class":
        limits = np.array(
            [
                conformal_quantile(cal_scores[y_cal == k], alpha=method.alpha)
                if (y_cal == k).any()
                else math.inf
                for k in range(cal.shape[1])
            ]
        )[None, :]
    else:
        per_group = {
            g: conformal_quantile(cal_scores[groups_cal == g], alpha=method.alpha)
            for g in np.unique(groups_cal)
        }
        limits = np.array([per_group[g] for g in groups_test])[:, None]
    sets = test_scores <= limits
    if not method.allow_empty:
        empty = ~sets.any(axis=1)
        sets[empty, test[empty].argmax(axis=1)] = True
    return cal_scores, sets


@pytest.mark.parametrize("conditional", ["marginal", "class", "group"])
@pytest.mark.parametrize("randomized", [False, True])
@pytest.mark.parametrize("cls", [APS, RAPS])
def test_sorted_once_sets_equal_the_definition_bit_for_bit(cls, randomized, conditional) -> None:
    probs, y, groups = _known_model(900, 8, seed=7)
    # Rows with exact ties (equal logits) and with probabilities that underflow to 0.
    probs[:40] = softmax(np.round(np.random.default_rng(8).normal(size=(40, 8))))
    probs[40:60] = softmax(np.random.default_rng(9).normal(size=(20, 8)) * 500)
    probs[60:80, :] = 1.0 / 8
    kwargs = {"lam": 0.05, "k_reg": 2} if cls is RAPS else {}
    method = cls(alpha=0.2, randomized=randomized, conditional=conditional, seed=3, **kwargs)
    cal, test = slice(0, 450), slice(450, None)
    method.fit(probs=probs[cal], y=y[cal], groups=groups[cal])
    sets = method.predict(probs=probs[test], groups=groups[test])
    method_ties = cls(alpha=0.2, randomized=randomized, conditional=conditional, seed=3, **kwargs)
    method_ties.fit(probs=probs[test], y=y[test], groups=groups[test])
    sets_ties = method_ties.predict(probs=probs[cal], groups=groups[cal])
    for m, (a, b), got in ((method, (cal, test), sets), (method_ties, (test, cal), sets_ties)):
        want_scores, want_sets = _reference_sets(m, probs[a], y[a], probs[b], groups[a], groups[b])
        np.testing.assert_array_equal(m.calibration_scores_, want_scores)
        np.testing.assert_array_equal(got, want_sets)
        np.testing.assert_array_equal(
            m.label_scores(probs[b], rng=np.random.default_rng([3, 1])),
            _reference_scores_of(m, probs[b]),
        )


def _reference_scores_of(method, probs):
    n = len(probs)
    order = np.argsort(-probs, axis=1, kind="stable")
    rows = np.arange(n)[:, None]
    cumulative = np.empty_like(probs)
    cumulative[rows, order] = np.cumsum(probs[rows, order], axis=1)
    rank = np.empty(order.shape, dtype=np.int64)
    rank[rows, order] = np.arange(1, probs.shape[1] + 1)
    u = np.random.default_rng([3, 1]).random(n) if method.randomized else np.zeros(n)
    out = cumulative - u[:, None] * probs
    if isinstance(method, RAPS):
        out = out + method.lam * np.maximum(0, rank - method.k_reg)
    return out


def test_running_sums_equal_numpy_cumsum_bit_for_bit() -> None:
    probs = softmax(np.random.default_rng(0).normal(size=(50, 1000)) * 3)
    order, values, cumulative = ranked(probs)
    np.testing.assert_array_equal(order, np.argsort(-probs, axis=1, kind="stable"))
    np.testing.assert_array_equal(cumulative, np.cumsum(values, axis=1))
    np.testing.assert_array_equal(values, np.take_along_axis(probs, order, axis=1))


@pytest.mark.parametrize("conditional", ["marginal", "class"])
def test_lac_sets_equal_its_label_scores(conditional) -> None:
    probs, y, _ = _known_model(500, 6, seed=11)
    lac = LAC(alpha=0.2, conditional=conditional, allow_empty=False)
    sets = lac.fit(probs=probs[:250], y=y[:250]).predict(probs=probs[250:])
    scores = lac.label_scores(probs[250:], rng=np.random.default_rng(0))
    want = scores <= lac.thresholds(n_examples=250)
    want[~want.any(axis=1), probs[250:][~want.any(axis=1)].argmax(axis=1)] = True
    np.testing.assert_array_equal(sets, want)
    np.testing.assert_array_equal(lac.calibration_scores_, 1.0 - probs[np.arange(250), y[:250]])
