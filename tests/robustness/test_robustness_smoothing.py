"""Randomized smoothing on a linear classifier, where the smoothed classifier is known exactly.

For f(x) = 1[w.x + b > 0], the smoothed classifier with noise N(0, sigma^2 I) gives class 1
probability Phi((w.x + b) / (sigma |w|)), so the ideal certified radius sigma * Phi^-1(pA) is
the distance from x to the hyperplane.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, binom, norm
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.robustness.smoothing import (
    ABSTAIN,
    MSG_NO_MODEL,
    MSG_SCORES_SHAPE,
    Smooth,
    certified_accuracy_curve,
    clopper_pearson_lower,
    plot_certified_accuracy,
)

W = torch.tensor([3.0, -4.0])  # |w| = 5
B = 0.5
SIGMA = 0.5


class Halfspace(nn.Module):
    """Logits (0, w.x + b): class 1 exactly when w.x + b > 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.reshape(x.shape[0], -1) @ W + B
        return torch.stack([torch.zeros_like(score), score], dim=1)


def point_at_distance(distance: float) -> torch.Tensor:
    """A point whose signed distance to the hyperplane w.x + b = 0 is ``distance``."""
    unit = W / W.norm()
    return unit * (distance - B / float(W.norm()))


HALFSPACE = Halfspace()


def smooth() -> Smooth:
    return Smooth(num_classes=2, sigma=SIGMA)


def test_clopper_pearson_matches_the_closed_form_and_the_binomial_tail() -> None:
    # With every trial a success the bound solves p**n = alpha.
    assert clopper_pearson_lower(successes=100, trials=100, alpha=0.001) == pytest.approx(
        0.001 ** (1 / 100), rel=1e-9
    )
    assert clopper_pearson_lower(successes=0, trials=50, alpha=0.05) == 0.0
    # In general it is the p at which seeing >= k successes has probability exactly alpha.
    for k, n, alpha in [(7, 10, 0.05), (930, 1000, 0.001), (1, 3, 0.2)]:
        low = clopper_pearson_lower(successes=k, trials=n, alpha=alpha)
        assert low == pytest.approx(beta.ppf(alpha, k, n - k + 1), rel=1e-12)
        assert binom.sf(k - 1, n, low) == pytest.approx(alpha, rel=1e-6)
    with pytest.raises(ConfigurationError, match="successes=11"):
        clopper_pearson_lower(successes=11, trials=10, alpha=0.05)


def test_certified_radius_approaches_the_distance_from_below() -> None:
    distance = 0.64  # pA = Phi(distance / sigma) = Phi(1.28), about 0.90
    x = point_at_distance(distance)
    p_a = norm.cdf(distance / SIGMA)
    result = smooth().certify_batch(
        model=HALFSPACE, x=x[None], n0=100, n=20_000, alpha=0.001, seed=3
    )
    label, radius = int(result.predictions[0]), float(result.radii[0])
    assert label == 1
    assert result.counts[0] / 20_000 == pytest.approx(p_a, abs=0.01)
    expected_lower = beta.ppf(0.001, result.counts[0], 20_000 - result.counts[0] + 1)
    assert result.p_lower[0] == pytest.approx(expected_lower, rel=1e-12)
    assert radius == pytest.approx(SIGMA * norm.ppf(result.p_lower[0]), rel=1e-12)
    # The certificate is sound (below the true distance) and tight with many samples.
    assert distance - 0.06 < radius < distance
    # The same through the one-input method, and the other side of the plane gives class 0.
    assert smooth().certify(model=HALFSPACE, x=x, n0=100, n=20_000, alpha=0.001, seed=3) == (
        label,
        radius,
    )
    other = smooth().certify(
        model=HALFSPACE, x=point_at_distance(-distance), n0=100, n=20_000, alpha=0.001
    )
    assert other[0] == 0 and distance - 0.06 < other[1] < distance


def test_certify_abstains_near_the_boundary() -> None:
    x = point_at_distance(0.0)  # pA = 0.5
    label, radius = smooth().certify(model=HALFSPACE, x=x, n0=100, n=5_000, alpha=0.001)
    assert (label, radius) == (ABSTAIN, 0.0)


def test_predict_abstention_rate_follows_the_binomial_test() -> None:
    n_inputs, alpha = 300, 0.1
    # On the boundary the two classes are equally likely: a class is returned only when the
    # test wrongly rejects, at most alpha of the time (the exact test is conservative).
    boundary = point_at_distance(0.0).expand(n_inputs, 2)
    labels = smooth().predict_batch(model=HALFSPACE, x=boundary, n=100, alpha=alpha, seed=0)
    answered = float(np.mean(labels != ABSTAIN))
    assert answered <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / n_inputs)
    # Far from it, every answer is the right class and nothing abstains.
    far = point_at_distance(1.5).expand(50, 2)
    assert (smooth().predict_batch(model=HALFSPACE, x=far, n=100, alpha=alpha) == 1).all()
    # At pA = Phi(0.2 / 0.5), about 0.66, with n = 100 the test rejects about half the time.
    middle = point_at_distance(0.2).expand(n_inputs, 2)
    rate = float(
        np.mean(smooth().predict_batch(model=HALFSPACE, x=middle, n=100, alpha=alpha) == 1)
    )
    p_a = norm.cdf(0.2 / SIGMA)
    counts = np.arange(101)
    rejects = np.array([binom.sf(max(k, 100 - k) - 1, 100, 0.5) * 2 <= alpha for k in counts])
    predicted = float(np.sum(binom.pmf(counts, 100, p_a) * (rejects & (counts > 50))))
    assert rate == pytest.approx(predicted, abs=0.1)
    assert smooth().predict(model=HALFSPACE, x=point_at_distance(1.5), n=100, alpha=alpha) == 1


def test_an_input_noise_does_not_depend_on_the_other_inputs() -> None:
    near = point_at_distance(0.3)
    a = smooth().certify_batch(
        model=HALFSPACE,
        x=torch.stack([point_at_distance(-1.0), near]),
        n0=50,
        n=500,
        alpha=0.01,
        seed=7,
    )
    b = smooth().certify_batch(
        model=HALFSPACE,
        x=torch.stack([point_at_distance(2.0), near]),
        n0=50,
        n=500,
        alpha=0.01,
        seed=7,
    )
    assert a.counts[1] == b.counts[1] and a.radii[1] == b.radii[1]
    c = smooth().certify_batch(
        model=HALFSPACE,
        x=torch.stack([point_at_distance(2.0), near]),
        n0=50,
        n=500,
        alpha=0.01,
        seed=8,
    )
    assert c.counts[1] != a.counts[1]


def test_certified_accuracy_curve_by_hand() -> None:
    radii = np.array([0.0, 0.2, 0.5, 1.0, 0.7])
    predictions = np.array([ABSTAIN, 1, 0, 2, 1])
    labels = np.array([0, 1, 0, 2, 2])
    grid, acc = certified_accuracy_curve(
        radii=radii, y_pred=predictions, y_true=labels, radii_grid=[0.0, 0.2, 0.6, 1.0, 2.0]
    )
    assert grid.tolist() == [0.0, 0.2, 0.6, 1.0, 2.0]
    # Correct and certified: inputs 1 (r=0.2), 2 (r=0.5), 3 (r=1.0); 4 is wrong, 0 abstains.
    assert acc.tolist() == [0.6, 0.6, 0.2, 0.2, 0.0]
    with pytest.raises(DataError, match="radii_grid"):
        certified_accuracy_curve(radii=radii, y_pred=predictions, y_true=labels, radii_grid=[])
    with pytest.raises(DataError, match="one entry per input"):
        certified_accuracy_curve(radii=radii[:3], y_pred=predictions, y_true=labels, radii_grid=[0])
    with pytest.warns(FutureWarning, match="'labels' argument of certified_accuracy_curve"):
        _, old = certified_accuracy_curve(
            radii=radii, y_pred=predictions, labels=labels, radii_grid=[0.0, 0.6]
        )
    assert old.tolist() == [0.6, 0.2]


def test_plot_returns_axes() -> None:
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_certified_accuracy(grid=[0.0, 0.5], accuracy=[0.9, 0.4], label="sigma=0.5")
    assert ax.get_xlabel() == "L2 radius"
    assert len(ax.get_lines()) == 1


def test_bad_parameters_are_refused() -> None:
    x = point_at_distance(1.0)
    with pytest.raises(ConfigurationError, match="'sigma' parameter of Smooth"):
        Smooth(num_classes=2, sigma=-1.0)
    with pytest.raises(ConfigurationError, match="'num_classes' parameter of Smooth"):
        Smooth(num_classes=1, sigma=SIGMA)
    with pytest.raises(ConfigurationError) as info:
        smooth().predict(model=HALFSPACE, x=x, n=10, alpha=1.5)
    rule = "a finite float in (0, 1)"
    assert str(info.value) == MSG_PARAM.format(
        name="alpha", owner="Smooth.predict", rule=rule, value=1.5
    )
    with pytest.raises(ConfigurationError) as info:
        smooth().predict(x=x, n=10, alpha=0.01)
    assert str(info.value) == MSG_NO_MODEL.format(owner="Smooth.predict")
    with pytest.raises(ConfigurationError, match="'n0' parameter"):
        smooth().certify(model=HALFSPACE, x=x, n0=0, n=10, alpha=0.01)
    wrong = Smooth(num_classes=3, sigma=SIGMA)
    with pytest.raises(DataError) as err:
        wrong.certify(model=HALFSPACE, x=x, n0=10, n=10, alpha=0.01)
    assert str(err.value) == MSG_SCORES_SHAPE.format(num_classes=3, shape=torch.Size([10, 2]))


def test_the_model_given_at_construction_still_works_with_a_future_warning() -> None:
    x = torch.stack([point_at_distance(1.0), point_at_distance(-0.5)])
    with pytest.warns(FutureWarning, match=r"Smooth\(base_classifier=...\) is deprecated in 0.2"):
        old = Smooth(base_classifier=HALFSPACE, num_classes=2, sigma=SIGMA)
    expected = smooth().certify_batch(model=HALFSPACE, x=x, n0=50, n=200, alpha=0.01, seed=1)
    result = old.certify_batch(x=x, n0=50, n=200, alpha=0.01, seed=1)
    assert np.array_equal(result.predictions, expected.predictions)
    assert np.array_equal(result.radii, expected.radii)
