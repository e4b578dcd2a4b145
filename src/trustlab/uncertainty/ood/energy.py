"""Energy score (Liu et al., 2020)."""

from __future__ import annotations

from typing import ClassVar

import torch

from trustlab.core.params import Constraint, Real, store_params, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.uncertainty.ood.base import OOD_DETECTORS, OODDetector, as_logits, to_array

__all__ = ["Energy"]


@OOD_DETECTORS.register("energy")
class Energy(OODDetector):
    """Free energy: outlier score ``E(x) = -T * logsumexp(logits / T)``.

    Liu et al. (2020) show the energy is aligned with the input's density, unlike the softmax
    confidence; higher energy means more likely OOD. Needs no fitting. Equal to pytorch-ood's
    ``EnergyBased``.

    Parameters
    ----------
    temperature : float, default 1.0
        ``T > 0``; the paper uses 1.
    batch_size : int, default 256

    References
    ----------
    .. [1] W. Liu, X. Wang, J. Owens and Y. Li, "Energy-based Out-of-distribution Detection",
       NeurIPS 2020.

    Examples
    --------
    >>> Energy().score_outputs(logits=[[0.0, 0.0]]).round(4).tolist()
    [-0.6931]
    """

    name = "energy"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "temperature": Real(low=0, closed="neither")
    }

    def __init__(self, *, temperature: float = 1.0, batch_size: int = 256) -> None:
        store_params(self, temperature=temperature, batch_size=batch_size)
        validate_params(self)

    temperature: float

    def score_outputs(self, *, logits: ArrayLike, features: ArrayLike | None = None) -> FloatArray:
        scaled = as_logits(logits) / self.temperature
        return to_array(-self.temperature * torch.logsumexp(scaled, dim=1))
