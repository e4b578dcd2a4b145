"""APS (adaptive prediction sets, Romano et al., 2020): cumulative sorted probability mass."""

from __future__ import annotations

from typing import ClassVar

from trustlab.core.params import Boolean, Constraint, store_params, validate_params
from trustlab.core.typing import FloatArray
from trustlab.uncertainty.conformal.base import CONFORMAL_METHODS, RankedConformalClassifier

__all__ = ["APS"]


@CONFORMAL_METHODS.register("aps")
class APS(RankedConformalClassifier):
    """Split conformal sets with the APS score: the probability mass of every label ranked
    at or above ``k``, minus ``U * p_k`` when randomised.

    ``s(x, k) = sum_{j: rank_j <= rank_k} p_j - U * p_k`` with ``U ~ Uniform(0, 1)`` drawn once
    per example (``randomized=True``, as in Romano et al., 2020 and Angelopoulos et al., 2021,
    which makes the coverage exact rather than conservative) or ``U = 0``. Labels are ranked
    by decreasing probability, ties by label index.

    Parameters
    ----------
    alpha : float, default 0.1
    conditional : {"marginal", "class", "group"}, default "marginal"
    randomized : bool, default True
    allow_empty : bool, default False
        Randomised scores can leave a set empty; by default it then gets the top class
        (``allow_zero_sets=False`` in the authors' code).
    seed : int, default 0

    References
    ----------
    .. [1] Y. Romano, M. Sesia and E. Candès, "Classification with Valid and Adaptive
       Coverage", NeurIPS 2020.
    .. [2] A. N. Angelopoulos, S. Bates, J. Malik and M. I. Jordan, "Uncertainty Sets for Image
       Classifiers using Conformal Prediction", ICLR 2021.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.6, 0.3, 0.1]] * 20)
    >>> aps = APS(alpha=0.1, randomized=False).fit(probs=probs, y=np.zeros(20, dtype=int))
    >>> aps.predict(probs=probs[:1]).astype(int).tolist()
    [[1, 0, 0]]
    """

    name = "aps"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"randomized": Boolean()}

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        conditional: str = "marginal",
        randomized: bool = True,
        allow_empty: bool = False,
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            alpha=alpha,
            conditional=conditional,
            randomized=randomized,
            allow_empty=allow_empty,
            seed=seed,
        )
        validate_params(self)

    def ranked_scores(
        self, sorted_probs: FloatArray, cumulative: FloatArray, *, uniform: FloatArray | None
    ) -> FloatArray:
        if uniform is None:
            return cumulative
        scores: FloatArray = cumulative - uniform[:, None] * sorted_probs
        return scores
