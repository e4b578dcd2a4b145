"""Saliency: the gradient of the class score with respect to the input."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.params import Boolean, Constraint, store_params, validate_params
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["Saliency"]


@register_explainer
class Saliency(Explainer):
    """Vanilla gradient (Simonyan et al., 2014), through ``captum.attr.Saliency``.

    The attribution of feature i is ``|d f_target / d x_i|`` (``abs=True``, the paper's and
    Captum's default) or the signed gradient.

    Parameters
    ----------
    abs : bool, default=True
        Return the absolute value of the gradient.
    batch_size : int, optional
        Inputs per Captum call (all at once by default).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> Saliency().attribute(model=model, x=torch.ones(4, 3), target=0).values.shape
    torch.Size([4, 3])
    """

    name = "saliency"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"abs": Boolean()}
    abs: bool

    def __init__(self, *, abs: bool = True, batch_size: int | None = None) -> None:
        store_params(self, abs=abs, batch_size=batch_size)
        validate_params(self)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        attr = captum_module()
        values: torch.Tensor = attr.Saliency(model).attribute(x, target=target, abs=self.abs)
        return values
