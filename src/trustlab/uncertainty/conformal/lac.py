"""LAC (least ambiguous set-valued classifier, Sadinle et al., 2019): score ``1 - p_k``."""

from __future__ import annotations

import numpy as np

from trustlab.core.params import store_params, validate_params
from trustlab.core.typing import FloatArray, IntArray
from trustlab.uncertainty.conformal.base import CONFORMAL_METHODS, ConformalClassifier

__all__ = ["LAC"]


@CONFORMAL_METHODS.register("lac")
class LAC(ConformalClassifier):
    """Split conformal sets with the score ``s(x, k) = 1 - p_k(x)`` (LAC, also called THR).

    The set keeps every label whose probability is at least ``1 - q``. Among methods with
    marginal coverage it gives the smallest mean set size (Sadinle et al., 2019), at the cost
    of uneven coverage across easy and hard inputs; sets may be empty (``allow_empty=True``
    by default, as in the paper, MAPIE's ``"lac"`` and TorchCP's ``THR``).

    Parameters
    ----------
    alpha : float, default 0.1
    conditional : {"marginal", "class", "group"}, default "marginal"
    allow_empty : bool, default True
    seed : int, default 0
        Unused (the score is deterministic); kept for a common signature.

    References
    ----------
    .. [1] M. Sadinle, J. Lei and L. Wasserman, "Least Ambiguous Set-Valued Classifiers with
       Bounded Error Levels", JASA 2019.

    Examples
    --------
    >>> import numpy as np
    >>> probs = np.array([[0.7, 0.2, 0.1]] * 20)
    >>> lac = LAC(alpha=0.1).fit(probs=probs, y=np.zeros(20, dtype=int))
    >>> lac.predict(probs=probs[:1]).astype(int).tolist()
    [[1, 0, 0]]
    """

    name = "lac"

    def __init__(
        self,
        *,
        alpha: float = 0.1,
        conditional: str = "marginal",
        allow_empty: bool = True,
        seed: int = 0,
    ) -> None:
        store_params(self, alpha=alpha, conditional=conditional, allow_empty=allow_empty, seed=seed)
        validate_params(self)

    def label_scores(self, probs: FloatArray, *, rng: np.random.Generator) -> FloatArray:
        scores: FloatArray = 1.0 - probs
        return scores

    def _calibration_scores(self, probs: FloatArray, labels: IntArray) -> FloatArray:
        scores: FloatArray = 1.0 - probs[np.arange(len(labels)), labels]
        return scores

    def _sets(self, probs: FloatArray, limits: FloatArray) -> np.ndarray:
        sets: np.ndarray = (1.0 - probs) <= limits
        if not self.allow_empty:
            empty = ~sets.any(axis=1)
            sets[empty, probs[empty].argmax(axis=1)] = True
        return sets
