"""Subgroup discovery: the slices of the data where a model does worst (Slice Finder).

Fixed sensitive groups miss harms that only show in combinations ("young women without a
degree"). :func:`find_slices` searches conjunctions of up to ``max_order`` attribute values,
as Chung et al.'s Slice Finder does with its lattice search, and reports the slices whose rate
of a per-example outcome (an error, or a positive prediction) departs most from the rest of the
data, each with its size, a Wilson interval of its rate and a two-proportion test against its
complement.

Differences from Slice Finder: the search is exhaustive up to ``max_order`` (no pruning of the
children of significant slices), slices are ranked by the effect size of the paper,
``(rate_s - rate_c) / sqrt((var_s + var_c) / 2)``, and significance is Bonferroni-corrected
over every slice tested instead of controlled by alpha-investing.

References
----------
.. [1] Y. Chung, T. Kraska, N. Polyzotis, K. H. Tae and S. E. Whang, "Slice Finder: Automated
   Data Slicing for Model Validation", ICDE 2019.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from trustlab.core.errors import DataError
from trustlab.core.params import Integer, Options, Real, check_param
from trustlab.core.typing import ArrayLike
from trustlab.fairness._inputs import as_class_labels

__all__ = ["OUTCOMES", "Slice", "find_slices"]

#: What the slices' rates count: ``"error"`` (y_pred != y_true), ``"selection"`` (y_pred == 1),
#: ``"false_negative"`` (y_pred == 0 among y_true == 1), ``"false_positive"`` (y_pred == 1 among
#: y_true == 0).
OUTCOMES = ("error", "selection", "false_negative", "false_positive")

MSG_FEATURES_EMPTY = "features must map at least one attribute name to one value per example."
MSG_FEATURE_LENGTH = "features[{name!r}] has {n} values; y_true has {n_examples}."

_OWNER = "find_slices"


@dataclass(frozen=True)
class Slice:
    """One subgroup and how the outcome's rate in it compares with the rest.

    Attributes
    ----------
    conditions : dict of str to str
        The attribute values that define the slice (a conjunction).
    size : int
        Examples in the slice (among the rows the outcome counts).
    rate : float
        The outcome's rate in the slice.
    interval : tuple of float
        Wilson score interval of ``rate`` at the requested confidence.
    complement_rate : float
        The rate in every other counted row.
    difference : float
        ``rate - complement_rate``.
    effect_size : float
        ``difference / sqrt((var_slice + var_complement) / 2)``.
    p_value : float
        Two-sided two-proportion z-test of ``rate == complement_rate``, Bonferroni-corrected
        over the slices tested (capped at 1).
    """

    conditions: dict[str, str]
    size: int
    rate: float
    interval: tuple[float, float]
    complement_rate: float
    difference: float
    effect_size: float
    p_value: float

    @property
    def name(self) -> str:
        """``"sex=Female, age=<25"``."""
        return ", ".join(f"{key}={value}" for key, value in self.conditions.items())


def _wilson(successes: float, n: int, z: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _outcome(outcome: str, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-example outcome (0/1) and the mask of the rows it is counted on."""
    everyone = np.ones(len(y_true), dtype=bool)
    if outcome == "error":
        return (y_pred != y_true).astype(np.float64), everyone
    if outcome == "selection":
        return (y_pred == 1).astype(np.float64), everyone
    if outcome == "false_negative":
        return (y_pred == 0).astype(np.float64), y_true == 1
    return (y_pred == 1).astype(np.float64), y_true == 0


def find_slices(
    *,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    features: Mapping[str, ArrayLike],
    outcome: str = "error",
    max_order: int = 2,
    min_size: int = 30,
    top_k: int = 10,
    direction: str = "higher",
    confidence: float = 0.95,
) -> list[Slice]:
    """The slices with the most extreme rate of ``outcome``, worst first.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_examples,)
        True labels and hard predictions (1 = positive).
    features : mapping of str to array-like, each shape (n_examples,)
        Categorical attributes to slice on (codes or strings); bin numeric ones first.
    outcome : {"error", "selection", "false_negative", "false_positive"}, default "error"
        What the rate counts (see :data:`OUTCOMES`).
    max_order : int, default 2
        Most attribute values combined in a slice.
    min_size : int, default 30
        Smallest slice reported (rows the outcome counts on).
    top_k : int, default 10
        Slices returned.
    direction : {"higher", "lower", "both"}, default "higher"
        Rank slices whose rate is higher than the rest (e.g. more errors), lower, or either.
    confidence : float, default 0.95
        Level of the Wilson intervals, in (0, 1).

    Returns
    -------
    list of Slice
        Up to ``top_k`` slices, by decreasing effect size in the chosen direction.

    Raises
    ------
    DataError
        If the arrays differ in length or ``features`` is empty.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sex, age = rng.integers(0, 2, 2000), rng.integers(0, 3, 2000)
    >>> y = rng.integers(0, 2, 2000)
    >>> wrong = (sex == 1) & (age == 2) & (rng.random(2000) < 0.5)
    >>> y_pred = np.where(wrong, 1 - y, y)
    >>> find_slices(y_true=y, y_pred=y_pred, features={"sex": sex, "age": age})[0].name
    'sex=1, age=2'
    """
    outcome = check_param(outcome, Options(*OUTCOMES), name="outcome", owner=_OWNER)
    max_order = check_param(max_order, Integer(low=1), name="max_order", owner=_OWNER)
    min_size = check_param(min_size, Integer(low=1), name="min_size", owner=_OWNER)
    top_k = check_param(top_k, Integer(low=1), name="top_k", owner=_OWNER)
    direction = check_param(
        direction, Options("higher", "lower", "both"), name="direction", owner=_OWNER
    )
    confidence = check_param(
        confidence, Real(low=0, high=1, closed="neither"), name="confidence", owner=_OWNER
    )
    truth = as_class_labels(y_true, name="y_true")
    predictions = as_class_labels(y_pred, name="y_pred")
    if len(predictions) != len(truth):
        raise DataError(
            MSG_FEATURE_LENGTH.format(name="y_pred", n=len(predictions), n_examples=len(truth))
        )
    if not features:
        raise DataError(MSG_FEATURES_EMPTY)
    columns: dict[str, np.ndarray] = {}
    for name, values in features.items():
        column = np.asarray(values).reshape(-1)
        if len(column) != len(truth):
            raise DataError(
                MSG_FEATURE_LENGTH.format(name=name, n=len(column), n_examples=len(truth))
            )
        columns[str(name)] = column.astype(str)
    values, counted = _outcome(outcome, truth, predictions)
    literals = [
        (name, value, columns[name] == value)
        for name in columns
        for value in np.unique(columns[name])
    ]
    z = float(norm.ppf(0.5 + confidence / 2))
    total = float(values[counted].sum())
    n_counted = int(counted.sum())
    candidates: list[tuple[dict[str, str], int, float]] = []
    for order in range(1, max_order + 1):
        for combo in itertools.combinations(literals, order):
            if len({name for name, _, _ in combo}) < order:
                continue  # two values of one attribute never co-occur
            mask = counted.copy()
            for _, _, member in combo:
                mask &= member
            size = int(mask.sum())
            if size < min_size or size == n_counted:
                continue
            conditions = {name: value for name, value, _ in combo}
            candidates.append((conditions, size, float(values[mask].sum())))
    n_tests = max(len(candidates), 1)
    found: list[Slice] = []
    for conditions, size, successes in candidates:
        rest = n_counted - size
        rate = successes / size
        other = (total - successes) / rest
        variance = (rate * (1 - rate) + other * (1 - other)) / 2
        difference = rate - other
        effect = difference / math.sqrt(variance) if variance > 0 else 0.0
        pooled = total / n_counted
        spread = math.sqrt(pooled * (1 - pooled) * (1 / size + 1 / rest))
        p_value = 2 * float(norm.sf(abs(difference) / spread)) if spread > 0 else 1.0
        found.append(
            Slice(
                conditions=conditions,
                size=size,
                rate=rate,
                interval=_wilson(successes, size, z),
                complement_rate=other,
                difference=difference,
                effect_size=effect,
                p_value=min(1.0, p_value * n_tests),
            )
        )
    sign = {"higher": 1.0, "lower": -1.0}
    if direction == "both":
        found.sort(key=lambda s: -abs(s.effect_size))
    else:
        found = [s for s in found if sign[direction] * s.effect_size > 0]
        found.sort(key=lambda s: -sign[direction] * s.effect_size)
    return found[:top_k]
