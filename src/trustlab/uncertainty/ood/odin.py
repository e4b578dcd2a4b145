"""ODIN: temperature scaling and input preprocessing (Liang et al., 2018)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, model_device_and_dtype, run_model
from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Constraint, Real, store_params, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty.ood.base import (
    OOD_DETECTORS,
    OODDetector,
    as_logits,
    eval_mode,
    to_array,
)

__all__ = ["ODIN"]

MSG_NEEDS_MODEL = (
    "ODIN with eps > 0 perturbs the inputs, so it needs the model: call score(model=..., "
    "x=...), or set eps=0 to score precomputed logits."
)


@OOD_DETECTORS.register("odin")
class ODIN(OODDetector):
    """ODIN: the maximum softmax probability at temperature ``T`` after a small input step.

    Each input moves one step of size ``eps`` against the gradient sign of the (temperature-
    scaled) cross-entropy at the predicted class, ``x' = x - eps * sign(-grad_x log
    S_yhat(x; T))``, which raises in-distribution confidence more than out-of-distribution
    confidence; the outlier score is ``-max_k softmax(f(x') / T)_k``. Needs no fitting.

    Differences from the paper: Liang et al. tune ``T`` and ``eps`` on OOD validation data and
    divide the gradient by the normalisation's standard deviation; here both are parameters
    (defaults: the paper's ``T = 1000``, ``eps = 0.0014``) and the step is taken in the model's
    input space.

    Parameters
    ----------
    temperature : float, default 1000.0
    eps : float, default 0.0014
        Input step, >= 0; 0 gives temperature-scaled MSP (then precomputed logits suffice).
    batch_size : int, default 256

    References
    ----------
    .. [1] S. Liang, Y. Li and R. Srikant, "Enhancing The Reliability of Out-of-distribution
       Image Detection in Neural Networks", ICLR 2018.

    Examples
    --------
    >>> ODIN(temperature=1.0, eps=0.0).score_outputs(logits=[[0.0, 0.0]]).tolist()
    [-0.5]
    """

    name = "odin"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "temperature": Real(low=0, closed="neither"),
        "eps": Real(low=0),
    }

    def __init__(
        self, *, temperature: float = 1000.0, eps: float = 0.0014, batch_size: int = 256
    ) -> None:
        store_params(self, temperature=temperature, eps=eps, batch_size=batch_size)
        validate_params(self)

    temperature: float
    eps: float

    def score_outputs(self, *, logits: ArrayLike, features: ArrayLike | None = None) -> FloatArray:
        if self.eps > 0:
            raise ConfigurationError(MSG_NEEDS_MODEL)
        scaled = as_logits(logits) / self.temperature
        return to_array(-torch.softmax(scaled, dim=1).max(dim=1).values)

    def score(self, *, model: nn.Module, x: ArrayLike) -> FloatArray:
        inputs = as_input_tensor(x)
        device, dtype = model_device_and_dtype(model)
        scores = []
        with eval_mode(model):
            for start in range(0, inputs.shape[0], self.batch_size):
                batch = inputs[start : start + self.batch_size].to(device=device, dtype=dtype)
                if self.eps > 0:
                    batch = self._perturb(model, batch)
                with torch.no_grad():
                    logits = run_model(model, batch)
                    assert isinstance(logits, torch.Tensor)
                    scaled = logits.double() / self.temperature
                    scores.append(-torch.softmax(scaled, dim=1).max(dim=1).values.cpu())
        return np.asarray(to_array(torch.cat(scores)), dtype=np.float64)

    def _perturb(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            inputs = batch.clone().requires_grad_(True)
            logits = run_model(model, inputs)
            assert isinstance(logits, torch.Tensor)
            scaled = logits / self.temperature
            loss = nn.functional.cross_entropy(scaled, scaled.argmax(dim=1))
            (grad,) = torch.autograd.grad(loss, inputs)
        return (batch - self.eps * torch.sign(grad)).detach()
