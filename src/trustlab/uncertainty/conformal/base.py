"""The base class of split-conformal classifiers and their registry.

Split conformal prediction (Vovk et al., 2005; Papadopoulos et al., 2002) turns any
classifier's probabilities into prediction *sets* with a coverage guarantee. A method defines a
non-conformity score ``s(x, k)`` of every label (low: ``k`` is plausible); :meth:`fit` computes
the scores of a calibration split at its true labels and their finite-sample quantile
(:func:`~trustlab.uncertainty.conformal.conformal_quantile`); :meth:`predict` keeps every label
whose score is at most that threshold. If calibration and test examples are exchangeable,
``P(y_test in set) >= 1 - alpha``.

``conditional`` picks which examples each threshold is computed from:

* ``"marginal"``: one threshold from every calibration example (marginal coverage);
* ``"class"``: one threshold per class, from the calibration examples of that class; a label
  ``k`` is kept if ``s(x, k) <= q_k`` (class-conditional or Mondrian conformal prediction,
  Vovk et al., 2005, section 4.5; Sadinle et al., 2019): coverage ``>= 1 - alpha`` for every
  class;
* ``"group"``: one threshold per group (e.g. the fairness pillar's sensitive attribute),
  from the calibration examples of that group; a test example uses its group's threshold
  (group-conditional Mondrian conformal prediction): coverage ``>= 1 - alpha`` within every
  group. ``groups`` must then be given to :meth:`fit` and :meth:`predict`.

Methods are registered in :data:`CONFORMAL_METHODS` (``"lac"``, ``"aps"``, ``"raps"``).
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar, TypeVar

import numpy as np

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import Boolean, Constraint, Options, Real, Seed
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike, FloatArray, IntArray
from trustlab.uncertainty._inputs import GroupsLike, as_group_codes, as_labels, as_probabilities
from trustlab.uncertainty.conformal.quantile import conformal_quantile

__all__ = ["CONFORMAL_METHODS", "MSG_GROUPS_NEEDED", "MSG_NOT_FITTED", "ConformalClassifier"]

MSG_NOT_FITTED = "{owner} is not fitted yet: call fit(probs=..., y=...) on a calibration split."
MSG_GROUPS_NEEDED = (
    "{owner} has conditional='group': pass groups=... (one group per example) to {method}."
)
MSG_UNKNOWN_GROUP = (
    "groups holds {group!r} (index {index}), a group the calibration split did not have; "
    "calibrated groups: {known}."
)
MSG_CLASSES = "{owner} was fitted on {fitted} classes; these probabilities have {given} columns."

Self = TypeVar("Self", bound="ConformalClassifier")

#: Conformal methods by name; ``CONFORMAL_METHODS.build("aps", {"alpha": 0.05})``.
CONFORMAL_METHODS: Registry[type[ConformalClassifier]] = Registry("conformal method")


class ConformalClassifier(abc.ABC):
    """Split conformal prediction sets from predicted probabilities.

    Parameters
    ----------
    alpha : float, default 0.1
        Target miscoverage: sets contain the true label with probability ``>= 1 - alpha``.
    conditional : {"marginal", "class", "group"}, default "marginal"
        Which calibration examples each threshold comes from (see the module docstring).
    allow_empty : bool
        Whether a set may be empty; when False, an empty set gets the top class.
    seed : int, default 0
        Seed of the uniform draws of randomised scores (fit and predict draw from separate
        streams of it); unused by deterministic scores.

    Attributes
    ----------
    quantile_ : float
        The marginal threshold (computed for every ``conditional``).
    class_quantiles_ : ndarray of float64, shape (n_classes,)
        Per-class thresholds (``conditional="class"`` only; else every entry is ``quantile_``).
    group_quantiles_ : dict of str to float
        Per-group thresholds (``conditional="group"`` only; else empty).
    calibration_scores_ : ndarray of float64, shape (n_calibration,)
        The calibration examples' scores at their true labels.
    n_classes_ : int
    """

    name: ClassVar[str]
    randomized: bool = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "alpha": Real(low=0, high=1, closed="neither"),
        "conditional": Options("marginal", "class", "group"),
        "allow_empty": Boolean(),
        "seed": Seed,
    }

    alpha: float
    conditional: str
    allow_empty: bool
    seed: int

    @abc.abstractmethod
    def label_scores(self, probs: FloatArray, *, rng: np.random.Generator) -> FloatArray:
        """Non-conformity scores ``s(x_i, k)`` of every example and label, shape (n, K).

        ``probs`` is already checked. Randomised scores draw from ``rng``.
        """

    def fit(
        self: Self, *, probs: ArrayLike, y: ArrayLike, groups: GroupsLike | None = None
    ) -> Self:
        """Compute the thresholds from a calibration split.

        Parameters
        ----------
        probs : array-like of float, shape (n_calibration, n_classes)
            Predicted probabilities of held-out calibration examples (not the training set).
        y : array-like of int, shape (n_calibration,)
            Their true labels.
        groups : array-like, shape (n_calibration,), optional
            One group per example; required for ``conditional="group"``.

        Returns
        -------
        self
        """
        matrix = as_probabilities(probs)
        labels = as_labels(y, n_classes=matrix.shape[1], n_examples=matrix.shape[0])
        rng = np.random.default_rng([self.seed, 0])
        scores = self.label_scores(matrix, rng=rng)[np.arange(len(labels)), labels]
        self.calibration_scores_ = scores
        self.n_classes_ = int(matrix.shape[1])
        self.quantile_ = conformal_quantile(scores, alpha=self.alpha)
        self.class_quantiles_ = np.full(self.n_classes_, self.quantile_)
        self.group_quantiles_: dict[str, float] = {}
        if self.conditional == "class":
            self.class_quantiles_ = np.array(
                [_quantile_or_inf(scores[labels == k], self.alpha) for k in range(self.n_classes_)]
            )
        elif self.conditional == "group":
            if groups is None:
                raise ConfigurationError(
                    MSG_GROUPS_NEEDED.format(owner=type(self).__name__, method="fit")
                )
            codes, names = as_group_codes(groups, n_examples=len(labels))
            self.group_quantiles_ = {
                name: conformal_quantile(scores[codes == g], alpha=self.alpha)
                for g, name in enumerate(names)
            }
        return self

    def thresholds(self, *, n_examples: int, groups: GroupsLike | None = None) -> FloatArray:
        """The threshold of every example and label, shape (n_examples, n_classes)."""
        self._check_fitted()
        if self.conditional == "group":
            if groups is None:
                raise ConfigurationError(
                    MSG_GROUPS_NEEDED.format(owner=type(self).__name__, method="predict")
                )
            codes, names = as_group_codes(groups, n_examples=n_examples)
            per_code = []
            for g, name in enumerate(names):
                if name not in self.group_quantiles_:
                    index = int(np.argmax(codes == g))
                    known = ", ".join(map(repr, self.group_quantiles_))
                    raise DataError(MSG_UNKNOWN_GROUP.format(group=name, index=index, known=known))
                per_code.append(self.group_quantiles_[name])
            column = np.asarray(per_code, dtype=np.float64)[codes]
            return np.repeat(column[:, None], self.n_classes_, axis=1)
        return np.broadcast_to(self.class_quantiles_, (n_examples, self.n_classes_)).copy()

    def predict(self, *, probs: ArrayLike, groups: GroupsLike | None = None) -> np.ndarray:
        """Prediction sets as a boolean matrix: ``sets[i, k]`` is True if label ``k`` is in
        the set of example ``i``.

        Parameters
        ----------
        probs : array-like of float, shape (n_examples, n_classes)
        groups : array-like, shape (n_examples,), optional
            Required for ``conditional="group"``.

        Returns
        -------
        ndarray of bool, shape (n_examples, n_classes)
        """
        self._check_fitted()
        matrix = as_probabilities(probs)
        if matrix.shape[1] != self.n_classes_:
            raise DataError(
                MSG_CLASSES.format(
                    owner=type(self).__name__, fitted=self.n_classes_, given=matrix.shape[1]
                )
            )
        rng = np.random.default_rng([self.seed, 1])
        scores = self.label_scores(matrix, rng=rng)
        sets: np.ndarray = scores <= self.thresholds(n_examples=len(matrix), groups=groups)
        if not self.allow_empty:
            empty = ~sets.any(axis=1)
            sets[empty, matrix[empty].argmax(axis=1)] = True
        return sets

    def _check_fitted(self) -> None:
        if not hasattr(self, "quantile_"):
            raise ConfigurationError(MSG_NOT_FITTED.format(owner=type(self).__name__))


def _quantile_or_inf(scores: FloatArray, alpha: float) -> float:
    """The conformal quantile, or +inf for a class with no calibration example."""
    return conformal_quantile(scores, alpha=alpha) if scores.size else math.inf


def sorted_cumulative(probs: FloatArray) -> tuple[IntArray, FloatArray]:
    """Per example and label: the rank (1-based) of the label by decreasing probability (ties
    by label index), and the probability mass of the labels ranked at or above it.

    Returns ``(rank, cumulative)``, each of shape (n, K), indexed by label.
    """
    n_classes = probs.shape[1]
    order = np.argsort(-probs, axis=1, kind="stable")
    rows = np.arange(probs.shape[0])[:, None]
    cumulative: FloatArray = np.empty_like(probs)
    cumulative[rows, order] = np.cumsum(probs[rows, order], axis=1)
    rank = np.empty(order.shape, dtype=np.int64)
    rank[rows, order] = np.arange(1, n_classes + 1)
    return rank, cumulative
