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
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import Boolean, Constraint, Options, Real, Seed
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike, FloatArray, IntArray
from trustlab.uncertainty._inputs import GroupsLike, as_group_codes, as_labels, as_probabilities
from trustlab.uncertainty.conformal.quantile import conformal_quantile

__all__ = [
    "CONFORMAL_METHODS",
    "MSG_GROUPS_NEEDED",
    "MSG_NOT_FITTED",
    "ConformalClassifier",
    "RankedConformalClassifier",
    "ranked",
]

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
        scores = self._calibration_scores(matrix, labels)
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
        limits = self._limits(n_examples=n_examples, groups=groups)
        return np.broadcast_to(limits, (n_examples, self.n_classes_)).copy()

    def _limits(self, *, n_examples: int, groups: GroupsLike | None) -> FloatArray:
        """The thresholds, broadcastable to (n_examples, n_classes): one row of per-class
        thresholds (shape (1, n_classes)) or one per example (shape (n_examples, 1))."""
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
            column: FloatArray = np.asarray(per_code, dtype=np.float64)[codes][:, None]
            return column
        row: FloatArray = self.class_quantiles_[None, :]
        return row

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
        return self._sets(matrix, self._limits(n_examples=len(matrix), groups=groups))

    def _rng(self, stream: int) -> np.random.Generator:
        """The generator of fit's (``stream=0``) or predict's (``stream=1``) uniform draws."""
        return np.random.default_rng([self.seed, stream])

    def _calibration_scores(self, probs: FloatArray, labels: IntArray) -> FloatArray:
        """The scores of checked calibration ``probs`` at their true ``labels``."""
        scores: FloatArray = self.label_scores(probs, rng=self._rng(0))
        return scores[np.arange(len(labels)), labels]

    def _sets(self, probs: FloatArray, limits: FloatArray) -> np.ndarray:
        """The sets of checked ``probs`` under ``limits`` (see :meth:`_limits`)."""
        sets: np.ndarray = self.label_scores(probs, rng=self._rng(1)) <= limits
        if not self.allow_empty:
            empty = ~sets.any(axis=1)
            sets[empty, probs[empty].argmax(axis=1)] = True
        return sets

    def _check_fitted(self) -> None:
        if not hasattr(self, "quantile_"):
            raise ConfigurationError(MSG_NOT_FITTED.format(owner=type(self).__name__))


def _quantile_or_inf(scores: FloatArray, alpha: float) -> float:
    """The conformal quantile, or +inf for a class with no calibration example."""
    return conformal_quantile(scores, alpha=alpha) if scores.size else math.inf


def ranked(probs: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
    """Every row's labels by decreasing probability (ties by label index), the sorted
    probabilities and their running sums, each of shape (n, K) and indexed by rank.

    The sort and the running sum are torch's, on a float64 view of ``probs`` (no copy): an
    unstable sort unless a row holds two equal probabilities (then the stable sort; without
    ties every sort gives the same order), and ``torch.cumsum``, which adds left to right as
    ``numpy.cumsum`` does, so the sums are bit for bit NumPy's (checked by the tests).
    """
    array = np.ascontiguousarray(probs, dtype=np.float64)
    tensor = torch.from_numpy(array if array.flags.writeable else array.copy())
    values, order = torch.sort(tensor, dim=1, descending=True)
    flat = values.numpy().reshape(-1)
    # Any two equal neighbours: a tie within a row (or, harmlessly, across two rows).
    if (flat[1:] == flat[:-1]).any():
        values, order = torch.sort(tensor, dim=1, descending=True, stable=True)
    cumulative = torch.cumsum(values, dim=1)
    return order.numpy(), values.numpy(), cumulative.numpy()


def _flat_index(order: IntArray) -> IntArray:
    """Positions in a flattened (n, K) matrix of the labels in ``order``."""
    offsets = np.arange(0, order.size, order.shape[1], dtype=np.int64)[:, None]
    flat: IntArray = order + offsets
    return flat


class RankedConformalClassifier(ConformalClassifier):
    """A conformal method whose score of a label depends on its rank (APS, RAPS).

    Subclasses give the scores in rank order (:meth:`ranked_scores`); each row is sorted once
    (:func:`ranked`), the scores are compared with the thresholds in rank order and the
    result is put back in label order, so :meth:`fit` and :meth:`predict` compute the same
    float64 numbers as :meth:`label_scores`, with one sort and no per-label scatter of scores.

    Exactness at the boundary: a label is kept when ``score <= threshold``, and both sides
    are the float64 numbers the definition gives when it is computed in label order (a stable
    argsort, ``numpy.cumsum`` of the sorted row from the top, ``- U * p_k``, ``+ penalty``):
    the same operations on the same operands in the same order, and the threshold is one of
    the calibration scores computed the same way. Nothing is rounded to float32 (a float32
    sort was measured no faster and could merge distinct probabilities into ties). The tests
    compare the sets and calibration scores with that label-order computation bit for bit,
    with ties and underflowed zeros, randomised or not.
    """

    randomized: bool

    @abc.abstractmethod
    def ranked_scores(
        self, sorted_probs: FloatArray, cumulative: FloatArray, *, uniform: FloatArray | None
    ) -> FloatArray:
        """Scores in rank order, shape (n, K): column ``r`` scores each row's label of rank
        ``r + 1``, from its probability ``sorted_probs[:, r]``, the mass ``cumulative[:, r]``
        of the labels ranked at or above it and one uniform draw per row (None when the
        score is not randomised)."""

    def _draws(self, n: int, rng: np.random.Generator) -> FloatArray | None:
        """One ``U ~ Uniform(0, 1)`` per row, or None for deterministic scores."""
        if not self.randomized:
            return None
        draws: FloatArray = rng.random(n)
        return draws

    def label_scores(self, probs: FloatArray, *, rng: np.random.Generator) -> FloatArray:
        order, values, cumulative = ranked(probs)
        scores = self.ranked_scores(values, cumulative, uniform=self._draws(len(probs), rng))
        out: FloatArray = np.empty(scores.size)
        out[_flat_index(order)] = scores
        return out.reshape(scores.shape)

    def _calibration_scores(self, probs: FloatArray, labels: IntArray) -> FloatArray:
        order, values, cumulative = ranked(probs)
        # No generator is built for deterministic scores (building one costs ~10 us).
        uniform = self._draws(len(probs), self._rng(0)) if self.randomized else None
        scores = self.ranked_scores(values, cumulative, uniform=uniform)
        position = (order == labels[:, None]).argmax(axis=1)  # each true label's rank - 1
        picked: FloatArray = scores[np.arange(len(labels)), position]
        return picked

    def _sets(self, probs: FloatArray, limits: FloatArray) -> np.ndarray:
        order, values, cumulative = ranked(probs)
        uniform = self._draws(len(probs), self._rng(1)) if self.randomized else None
        scores = self.ranked_scores(values, cumulative, uniform=uniform)
        if self.conditional == "class":
            limits = limits[0][order]  # each label's threshold, in its row's rank order
        elif self.conditional == "marginal":
            limits = limits[:, :1]  # one threshold for all
        kept = scores <= limits
        if not self.allow_empty:
            kept[:, 0] |= ~kept.any(axis=1)  # an empty set gets the top-ranked label
        sets = np.empty(kept.size, dtype=bool)
        sets[_flat_index(order)] = kept
        return sets.reshape(kept.shape)
