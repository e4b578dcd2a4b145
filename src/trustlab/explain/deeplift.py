"""DeepLIFT: contributions relative to a baseline, propagated with the Rescale rule."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.params import Constraint, Real, store_params, validate_params
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["DeepLift"]


@register_explainer
class DeepLift(Explainer):
    """DeepLIFT with the Rescale rule (Shrikumar et al., 2017), through ``captum.attr.DeepLift``.

    Contributions ``C_i`` of each feature's difference from the baseline sum to
    ``f(x) - f(x')`` (summation-to-delta). Captum's rules need every non-linearity to be its own
    ``nn.Module`` used once in the forward pass (e.g. ``canvas-cnn``, not ``digits-cnn``, whose
    ReLU module is shared).

    Parameters
    ----------
    baseline : float, default=0.0
        The value of every feature of the reference input.
    batch_size : int, optional
        Inputs per Captum call.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    >>> DeepLift().attribute(model=model, x=torch.ones(2, 3)).values.shape
    torch.Size([2, 3])
    """

    name = "deeplift"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"baseline": Real()}
    baseline: float

    def __init__(self, *, baseline: float = 0.0, batch_size: int | None = None) -> None:
        store_params(self, baseline=baseline, batch_size=batch_size)
        validate_params(self)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        values: torch.Tensor = (
            captum_module().DeepLift(model).attribute(x, baselines=self.baseline, target=target)
        )
        return values
