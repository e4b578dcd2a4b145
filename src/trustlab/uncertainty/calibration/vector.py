"""Vector scaling (Guo et al., 2017): one scale and one bias per class, fitted by NLL."""

from __future__ import annotations

import numpy as np
import torch

from trustlab.core.params import store_params, validate_params
from trustlab.uncertainty.calibration.base import CALIBRATORS, Calibrator

__all__ = ["VectorScaling"]


@CALIBRATORS.register("vector")
class VectorScaling(Calibrator):
    """Vector scaling: ``softmax(logits * w + b)`` with ``w, b`` in R^K fitted by NLL.

    Matrix scaling restricted to a diagonal matrix (Guo et al., 2017). Unlike temperature
    scaling it may change the predicted class. Starts from ``w = 1, b = 0``.

    Parameters
    ----------
    max_iter : int, default 200
    tol : float, default 1e-10

    Attributes
    ----------
    weights_, bias_ : ndarray of float64, shape (n_classes,)
    nll_before_, nll_after_ : float

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> logits = 3 * np.eye(3)[y] + rng.normal(size=(300, 3)) + [2.0, 0.0, 0.0]
    >>> vs = VectorScaling().fit(logits=logits, y=y)
    >>> vs.weights_.shape, vs.nll_after_ < vs.nll_before_
    ((3,), True)
    """

    name = "vector"

    def __init__(self, *, max_iter: int = 200, tol: float = 1e-10) -> None:
        store_params(self, max_iter=max_iter, tol=tol)
        validate_params(self)

    def _initial(self, n_classes: int) -> list[torch.Tensor]:
        return [
            torch.ones(n_classes, dtype=torch.float64, requires_grad=True),
            torch.zeros(n_classes, dtype=torch.float64, requires_grad=True),
        ]

    def _apply(self, logits: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        return logits * params[0] + params[1]

    def _store(self, params: list[torch.Tensor]) -> None:
        self.weights_ = params[0].numpy().astype(np.float64)
        self.bias_ = params[1].numpy().astype(np.float64)

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        return logits * torch.from_numpy(self.weights_) + torch.from_numpy(self.bias_)
