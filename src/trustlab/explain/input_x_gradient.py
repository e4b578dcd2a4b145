"""Input x gradient: the gradient times the input."""

from __future__ import annotations

import torch
from torch import nn

from trustlab.core.params import store_params, validate_params
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["InputXGradient"]


@register_explainer
class InputXGradient(Explainer):
    """Gradient x input (Shrikumar et al., 2016), through ``captum.attr.InputXGradient``.

    For a linear model ``f(x) = w.x + b`` the attributions ``w_i x_i`` are exact: they sum to
    ``f(x) - f(0)``.

    Parameters
    ----------
    batch_size : int, optional
        Inputs per Captum call (all at once by default).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> InputXGradient().attribute(model=model, x=torch.ones(4, 3)).values.shape
    torch.Size([4, 3])
    """

    name = "input_x_gradient"

    def __init__(self, *, batch_size: int | None = None) -> None:
        store_params(self, batch_size=batch_size)
        validate_params(self)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        values: torch.Tensor = captum_module().InputXGradient(model).attribute(x, target=target)
        return values
