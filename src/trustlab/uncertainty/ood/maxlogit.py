"""Maximum logit (Hendrycks et al., 2022)."""

from __future__ import annotations

from trustlab.core.params import store_params, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty.ood.base import OOD_DETECTORS, OODDetector, as_logits, to_array

__all__ = ["MaxLogit"]


@OOD_DETECTORS.register("maxlogit")
class MaxLogit(OODDetector):
    """Maximum logit: outlier score ``-max_k logits_k``.

    Hendrycks et al. (2022) found the unnormalised maximum logit better than MSP with many
    classes. Needs no fitting. Equal to pytorch-ood's ``MaxLogit``.

    Parameters
    ----------
    batch_size : int, default 256

    References
    ----------
    .. [1] D. Hendrycks, S. Basart, M. Mazeika, A. Zou, J. Kwon, M. Mostajabi, J. Steinhardt
       and D. Song, "Scaling Out-of-Distribution Detection for Real-World Settings", ICML 2022.

    Examples
    --------
    >>> MaxLogit().score_outputs(logits=[[1.0, 3.0], [0.5, 0.0]]).tolist()
    [-3.0, -0.5]
    """

    name = "maxlogit"

    def __init__(self, *, batch_size: int = 256) -> None:
        store_params(self, batch_size=batch_size)
        validate_params(self)

    def score_outputs(self, *, logits: ArrayLike, features: ArrayLike | None = None) -> FloatArray:
        return to_array(-as_logits(logits).max(dim=1).values)
