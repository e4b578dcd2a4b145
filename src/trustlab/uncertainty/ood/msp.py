"""Maximum softmax probability (Hendrycks and Gimpel, 2017)."""

from __future__ import annotations

import torch

from trustlab.core.params import store_params, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty.ood.base import OOD_DETECTORS, OODDetector, as_logits, to_array

__all__ = ["MSP"]


@OOD_DETECTORS.register("msp")
class MSP(OODDetector):
    """Maximum softmax probability: outlier score ``-max_k softmax(logits)_k``.

    The baseline of Hendrycks and Gimpel (2017): in-distribution inputs get more confident
    predictions. Needs no fitting. Equal to pytorch-ood's ``MaxSoftmax``.

    Parameters
    ----------
    batch_size : int, default 256

    References
    ----------
    .. [1] D. Hendrycks and K. Gimpel, "A Baseline for Detecting Misclassified and
       Out-of-Distribution Examples in Neural Networks", ICLR 2017.

    Examples
    --------
    >>> MSP().score_outputs(logits=[[0.0, 0.0], [10.0, 0.0]]).round(3).tolist()
    [-0.5, -1.0]
    """

    name = "msp"

    def __init__(self, *, batch_size: int = 256) -> None:
        store_params(self, batch_size=batch_size)
        validate_params(self)

    def score_outputs(self, *, logits: ArrayLike, features: ArrayLike | None = None) -> FloatArray:
        return to_array(-torch.softmax(as_logits(logits), dim=1).max(dim=1).values)
