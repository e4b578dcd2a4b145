"""Group-specific (randomised) thresholds (Hardt, Price & Srebro, 2016): post-processing."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.optimize import linprog

from trustlab.core.checks import check_same_length
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import Constraint, Real, Seed, check_param, validate_params
from trustlab.core.typing import ArrayLike, FloatArray, IntArray
from trustlab.fairness._inputs import Groups, as_class_labels, as_groups, as_scores
from trustlab.fairness.base import (
    MITIGATIONS,
    FairnessMitigation,
    MitigationReport,
    report_of,
)
from trustlab.fairness.metrics import SensitiveFeatures

__all__ = ["GroupThresholds", "ThresholdRule"]

MSG_SCORES_1D = (
    "scores must be 1-D with one score per example (higher = more likely positive); got shape "
    "{shape}. For a two-class model pass logits[:, 1] - logits[:, 0]."
)
MSG_BINARY = "y must hold the labels 0 and 1 for GroupThresholds; found {value} at index {index}."
MSG_MISSING_CLASS = (
    "Group {group!r} has no example with y == {label}; {criterion} needs both classes in "
    "every group to place its thresholds."
)
MSG_RENAMED = (
    "The 'y_true' argument of GroupThresholds.{method} was renamed 'y' (the labels of the data "
    "a mitigation works on) and is deprecated in 0.2; it will be removed in 0.4."
)
MSG_LABELS_TWICE = "Pass the labels once, as y=... (y_true is its deprecated name)."
MSG_NO_LABELS = "GroupThresholds.{method}() missing required keyword-only argument: 'y'"
MSG_UNSEEN_GROUP = (
    "Group {group!r} was not seen by GroupThresholds.fit (known groups: {known}); fit on data "
    "that covers every group."
)
MSG_LP_FAILED = "The threshold linear program failed: {message}."

_EPS = 1e-12


def _labels(y: ArrayLike | None, y_true: ArrayLike | None, *, method: str) -> ArrayLike:
    """``y``, or ``y_true`` given under its deprecated name (with a FutureWarning)."""
    if y_true is None:
        if y is None:
            raise TypeError(MSG_NO_LABELS.format(method=method))
        return y
    if y is not None:
        raise TypeError(MSG_LABELS_TWICE)
    warnings.warn(MSG_RENAMED.format(method=method), FutureWarning, stacklevel=3)
    return y_true


@dataclass(frozen=True)
class ThresholdRule:
    """The randomised decision rule of one group.

    An example of the group is predicted positive by the rule "score >= thresholds[j]", with
    ``j`` drawn with probability ``probabilities[j]``. A threshold of ``+inf`` predicts nothing
    positive; ``-inf`` everything.
    """

    thresholds: FloatArray
    probabilities: FloatArray


@dataclass(frozen=True)
class _Operating:
    """Deterministic threshold rules of one group and their rates."""

    thresholds: FloatArray
    selection: FloatArray
    tpr: FloatArray
    fpr: FloatArray
    accuracy: FloatArray


def _operating_points(scores: FloatArray, y: IntArray) -> _Operating:
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_y = scores[order], y[order]
    last = np.flatnonzero(np.diff(sorted_scores) != 0)
    last = np.append(last, len(sorted_scores) - 1)
    tp = np.concatenate(([0], np.cumsum(sorted_y)[last])).astype(np.float64)
    selected = np.concatenate(([0], last + 1)).astype(np.float64)
    fp = selected - tp
    n, positives = float(len(y)), float(y.sum())
    negatives = n - positives
    thresholds = np.concatenate(([np.inf], sorted_scores[last]))
    # The last rule selects every example; written as -inf so unseen lower scores pass too.
    thresholds[-1] = -np.inf
    return _Operating(
        thresholds=thresholds,
        selection=selected / n,
        tpr=tp / max(positives, 1.0),
        fpr=fp / max(negatives, 1.0),
        accuracy=(tp + negatives - fp) / n,
    )


def _upper_hull(x: FloatArray, y: FloatArray) -> list[int]:
    """Indices of the upper convex hull of the points, left to right."""
    order = np.lexsort((-y, x))
    hull: list[int] = []
    for i in order:
        if hull and x[i] == x[hull[-1]]:
            continue
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = (x[a] - x[o]) * (y[i] - y[o]) - (y[a] - y[o]) * (x[i] - x[o])
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(int(i))
    return hull


@MITIGATIONS.register("group_thresholds")
class GroupThresholds(FairnessMitigation):
    """Group-specific randomised thresholds on a model's scores (Hardt et al., 2016).

    Post-processing. Given a score per example (higher = more likely positive), the group of
    every example and the true labels, :meth:`fit` finds for every group a randomised mixture
    of threshold rules "score >= t" that maximises the expected accuracy subject to the
    criterion holding within ``tolerance``:

    * ``"demographic_parity"``: selection rates of any two groups differ by at most
      ``tolerance``;
    * ``"equal_opportunity"``: true-positive rates differ by at most ``tolerance``;
    * ``"equalized_odds"``: true- and false-positive rates both do.

    The optimum is exact on the given scores: each group's achievable (rate, accuracy) or
    (FPR, TPR) points are the convex hull of its deterministic threshold rules (mixing two
    rules at random reaches any point between them), so the problem is a linear program over
    the mixing weights of the hull vertices, solved with HiGHS. As in the paper, equalized odds
    may need points below a group's ROC curve; mixing with the all-negative and all-positive
    rules reaches them. :meth:`predict` draws each example's rule at random (seeded);
    :meth:`positive_probability` gives the expected prediction instead.

    Threat model / setting: the sensitive attribute is needed at prediction time; the scores
    can come from any model. Fairlearn's ``ThresholdOptimizer`` solves the same problem with
    exact parity (``tolerance=0``) and for two-point mixtures along the ROC hull.

    Parameters
    ----------
    criterion : {"demographic_parity", "equalized_odds", "equal_opportunity"}
        The criterion to enforce.
    tolerance : float, default 0.0
        The largest allowed between-groups difference on the fitting data, >= 0.

    Attributes
    ----------
    rules_ : dict of str to ThresholdRule
        The rule of each group.
    group_names_ : tuple of str
        The groups seen by :meth:`fit`.
    gap_, accuracy_ : float
        The expected gap and accuracy of the randomised rules on the fitting data.

    References
    ----------
    .. [1] M. Hardt, E. Price and N. Srebro, "Equality of Opportunity in Supervised Learning",
       NeurIPS 2016.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> group = rng.integers(0, 2, 1000)
    >>> y = (rng.random(1000) < 0.3 + 0.3 * group).astype(int)
    >>> scores = y + rng.normal(size=1000)
    >>> post = GroupThresholds(criterion="demographic_parity").fit(
    ...     scores=scores, y=y, sensitive_features=group
    ... )
    >>> round(post.gap_, 6)
    0.0
    >>> post.predict(scores=scores, sensitive_features=group).shape
    (1000,)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"tolerance": Real(low=0)}

    def __init__(self, *, criterion: str = "demographic_parity", tolerance: float = 0.0) -> None:
        self.criterion = criterion
        self.tolerance = tolerance
        validate_params(self)

    def fit(
        self,
        *,
        scores: ArrayLike,
        y: ArrayLike | None = None,
        sensitive_features: SensitiveFeatures,
        y_true: ArrayLike | None = None,
    ) -> GroupThresholds:
        """Find the rule of every group; return ``self``.

        Parameters
        ----------
        scores : array-like of float, shape (n_examples,)
            Finite scores, higher meaning more likely positive (e.g. a logit margin).
        y : array-like of {0, 1}, shape (n_examples,)
            True labels.
        sensitive_features : array-like or mapping of str to array-like
            The group of every example.
        y_true : array-like, optional
            Deprecated name of ``y`` (deprecated in 0.2, removed in 0.4).
        """
        criterion, tolerance = self.criterion, self.tolerance
        labels = as_class_labels(_labels(y, y_true, method="fit"), name="y")
        binary = (labels == 0) | (labels == 1)
        if not binary.all():
            index = int(np.argmin(binary))
            raise DataError(MSG_BINARY.format(value=int(labels[index]), index=index))
        values = self._scores(scores, len(labels))
        groups = as_groups(sensitive_features, n_examples=len(labels), other="y")

        points: list[_Operating] = []
        candidates: list[list[int]] = []
        for g, name in enumerate(groups.names):
            member = groups.codes == g
            y_g = labels[member]
            needed: tuple[int, ...] = {
                "demographic_parity": (),
                "equal_opportunity": (1,),
                "equalized_odds": (0, 1),
            }[criterion]
            for label in needed:
                if not (y_g == label).any():
                    raise DataError(
                        MSG_MISSING_CLASS.format(group=name, label=label, criterion=criterion)
                    )
            op = _operating_points(values[member], y_g)
            if criterion == "demographic_parity":
                hull = _upper_hull(op.selection, op.accuracy)
            else:
                hull = _upper_hull(op.fpr, op.tpr)
            last = len(op.thresholds) - 1
            candidates.append(sorted({0, last, *hull}))
            points.append(op)

        weights = self._solve(criterion, tolerance, groups, points, candidates)
        self.rules_: dict[str, ThresholdRule] = {}
        stats: dict[str, list[float]] = {"selection": [], "tpr": [], "fpr": []}
        accuracy = 0.0
        sizes = np.bincount(groups.codes, minlength=groups.n_groups) / len(labels)
        for g, name in enumerate(groups.names):
            op, chosen, w = points[g], np.array(candidates[g]), weights[g]
            keep = w > 1e-9
            probabilities = w[keep] / w[keep].sum()
            self.rules_[name] = ThresholdRule(
                thresholds=op.thresholds[chosen[keep]], probabilities=probabilities
            )
            for key in stats:
                stats[key].append(float(getattr(op, key)[chosen[keep]] @ probabilities))
            accuracy += sizes[g] * float(op.accuracy[chosen[keep]] @ probabilities)
        compared = {
            "demographic_parity": ("selection",),
            "equal_opportunity": ("tpr",),
            "equalized_odds": ("tpr", "fpr"),
        }[criterion]
        self.group_names_ = groups.names
        self.gap_ = max(max(stats[key]) - min(stats[key]) for key in compared)
        self.accuracy_ = accuracy
        return self

    @staticmethod
    def _scores(scores: ArrayLike, n_examples: int) -> FloatArray:
        values = as_scores(scores, name="scores", n_examples=n_examples)
        if values.ndim != 1:
            raise DataError(MSG_SCORES_1D.format(shape=values.shape))
        return values

    @staticmethod
    def _solve(
        criterion: str,
        tolerance: float,
        groups: Groups,
        points: list[_Operating],
        candidates: list[list[int]],
    ) -> list[FloatArray]:
        """Mixing weights of every group's candidate rules that maximise expected accuracy."""
        offsets = np.cumsum([0] + [len(c) for c in candidates])
        n_vars = int(offsets[-1])
        sizes = np.bincount(groups.codes, minlength=groups.n_groups) / len(groups)
        objective = np.zeros(n_vars)
        a_eq = np.zeros((groups.n_groups, n_vars))
        for g, chosen in enumerate(candidates):
            part = slice(offsets[g], offsets[g + 1])
            objective[part] = -sizes[g] * points[g].accuracy[chosen]
            a_eq[g, part] = 1.0
        keys = {
            "demographic_parity": ("selection",),
            "equal_opportunity": ("tpr",),
            "equalized_odds": ("tpr", "fpr"),
        }[criterion]
        rows: list[FloatArray] = []
        for key in keys:
            for g in range(groups.n_groups):
                for h in range(groups.n_groups):
                    if g == h:
                        continue
                    row = np.zeros(n_vars)
                    row[offsets[g] : offsets[g + 1]] = getattr(points[g], key)[candidates[g]]
                    row[offsets[h] : offsets[h + 1]] -= getattr(points[h], key)[candidates[h]]
                    rows.append(row)
        result = linprog(
            objective,
            A_ub=np.array(rows),
            b_ub=np.full(len(rows), tolerance),
            A_eq=a_eq,
            b_eq=np.ones(groups.n_groups),
            bounds=(0.0, None),
            method="highs",
        )
        if result.status != 0:
            raise ConfigurationError(MSG_LP_FAILED.format(message=result.message))
        solution = np.clip(result.x, 0.0, None)
        return [solution[offsets[g] : offsets[g + 1]] for g in range(groups.n_groups)]

    def _group_rows(
        self, scores: ArrayLike, sensitive_features: SensitiveFeatures
    ) -> tuple[FloatArray, list[tuple[np.ndarray, ThresholdRule]]]:
        self._check_fitted()
        values = as_scores(scores, name="scores", n_examples=None)
        if values.ndim != 1:
            raise DataError(MSG_SCORES_1D.format(shape=values.shape))
        groups = as_groups(sensitive_features, n_examples=len(values), other="scores", min_groups=1)
        parts = []
        for g, name in enumerate(groups.names):
            if name not in self.rules_:
                known = ", ".join(map(repr, self.group_names_))
                raise DataError(MSG_UNSEEN_GROUP.format(group=name, known=known))
            parts.append((np.flatnonzero(groups.codes == g), self.rules_[name]))
        return values, parts

    def positive_probability(
        self, *, scores: ArrayLike, sensitive_features: SensitiveFeatures
    ) -> FloatArray:
        """The probability that :meth:`predict` labels each example positive, shape (n,)."""
        values, parts = self._group_rows(scores, sensitive_features)
        out = np.zeros(len(values))
        for rows, rule in parts:
            passes = values[rows][:, None] >= rule.thresholds[None, :]
            out[rows] = passes.astype(np.float64) @ rule.probabilities
        return out

    def predict(
        self, *, scores: ArrayLike, sensitive_features: SensitiveFeatures, seed: int = 0
    ) -> IntArray:
        """Hard predictions: each example's rule is drawn from its group's mixture.

        Parameters
        ----------
        scores : array-like of float, shape (n_examples,)
            Scores on the same scale as those given to :meth:`fit`.
        sensitive_features : array-like or mapping of str to array-like
            The group of every example; every group must have been seen by :meth:`fit`.
        seed : int, default 0
            Seed of the random choice of rules; the same seed gives the same predictions.
        """
        seed = check_param(seed, Seed, name="seed", owner="GroupThresholds.predict")
        values, parts = self._group_rows(scores, sensitive_features)
        rng = np.random.default_rng(seed)
        draws = rng.random(len(values))
        out = np.zeros(len(values), dtype=np.int64)
        for rows, rule in parts:
            cumulative = np.cumsum(rule.probabilities)
            choice = np.minimum(
                np.searchsorted(cumulative, draws[rows] * cumulative[-1], side="right"),
                len(cumulative) - 1,
            )
            out[rows] = (values[rows] >= rule.thresholds[choice]).astype(np.int64)
        return out

    def evaluate(
        self,
        *,
        scores: ArrayLike,
        y: ArrayLike | None = None,
        sensitive_features: SensitiveFeatures,
        seed: int = 0,
        y_true: ArrayLike | None = None,
    ) -> MitigationReport:
        """Accuracy and gap of :meth:`predict` on labelled data ``(scores, y)``.

        ``y_true`` is the deprecated name of ``y`` (deprecated in 0.2, removed in 0.4).
        """
        labels = as_class_labels(_labels(y, y_true, method="evaluate"), name="y")
        predictions = self.predict(scores=scores, sensitive_features=sensitive_features, seed=seed)
        check_same_length(
            first="y", n_first=len(labels), second="scores", n_second=len(predictions)
        )
        return report_of(
            criterion=self.criterion,
            y_true=labels,
            y_pred=predictions,
            sensitive_features=sensitive_features,
        )
