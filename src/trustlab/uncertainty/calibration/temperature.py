"""Temperature scaling (Guo et al., 2017): divide every logit by one fitted temperature."""

from __future__ import annotations

import math

import torch

from trustlab.core.params import store_params, validate_params
from trustlab.uncertainty.calibration.base import CALIBRATORS, Calibrator

__all__ = ["TemperatureScaling"]


@CALIBRATORS.register("temperature")
class TemperatureScaling(Calibrator):
    """Temperature scaling: ``softmax(logits / T)`` with ``T > 0`` fitted by NLL.

    One parameter, so it never changes the predicted class; it is the strongest of the simple
    post-hoc calibrators in Guo et al. (2017). ``T`` is optimised as ``log T`` (so it stays
    positive) with L-BFGS from ``T = 1``; Guo et al. optimise ``T`` directly, which reaches
    the same minimum (the NLL is convex in ``1 / T``).

    Parameters
    ----------
    max_iter : int, default 200
    tol : float, default 1e-10

    Attributes
    ----------
    temperature_ : float
        The fitted temperature (> 1 softens an over-confident model).
    nll_before_, nll_after_ : float
        Mean NLL of the calibration split before and after.

    References
    ----------
    .. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of Modern Neural
       Networks", ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 500)
    >>> logits = 5 * np.eye(3)[y] + rng.normal(size=(500, 3)) * 4  # over-confident
    >>> ts = TemperatureScaling().fit(logits=logits, y=y)
    >>> ts.temperature_ > 1, ts.nll_after_ < ts.nll_before_
    (True, True)
    """

    name = "temperature"

    def __init__(self, *, max_iter: int = 200, tol: float = 1e-10) -> None:
        store_params(self, max_iter=max_iter, tol=tol)
        validate_params(self)

    def _initial(self, n_classes: int) -> list[torch.Tensor]:
        return [torch.zeros(1, dtype=torch.float64, requires_grad=True)]

    def _apply(self, logits: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        return logits * torch.exp(-params[0])

    def _store(self, params: list[torch.Tensor]) -> None:
        self.temperature_ = float(math.exp(float(params[0])))

    def _transform(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.temperature_
