"""Integrated Gradients: the path integral of gradients from a baseline to the input."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.params import (
    Constraint,
    Integer,
    Optional,
    Options,
    Real,
    store_params,
    validate_params,
)
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["IntegratedGradients"]

#: Captum's integral approximation rules.
IG_RULES = ("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")


@register_explainer
class IntegratedGradients(Explainer):
    """Integrated Gradients (Sundararajan et al., 2017), through Captum.

    ``(x_i - x'_i) * integral_0^1 d f(x' + a (x - x')) / d x_i da`` with a constant baseline
    ``x'``; the attributions sum to ``f(x) - f(x')`` up to the integral's error
    (completeness). Defaults are Captum's: 50 steps of Gauss-Legendre quadrature.

    Parameters
    ----------
    n_steps : int, default=50
        Points of the integral.
    method : str, default="gausslegendre"
        Captum's quadrature rule (``riemann_trapezoid``, ``riemann_left``, ...).
    baseline : float, default=0.0
        The value of every feature of the baseline (0: a black image).
    internal_batch_size : int, optional
        Scaled inputs per forward pass inside Captum (limits memory).
    batch_size : int, optional
        Inputs per Captum call (all at once by default).

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> a = IntegratedGradients(n_steps=8).attribute(model=model, x=torch.ones(1, 3), target=1)
    >>> bool(torch.allclose(a.values[0], model.weight[1].detach()))
    True
    """

    name = "integrated_gradients"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "n_steps": Integer(low=1),
        "method": Options(*IG_RULES),
        "baseline": Real(),
        "internal_batch_size": Optional(Integer(low=1)),
    }

    n_steps: int
    method: str
    baseline: float
    internal_batch_size: int | None

    def __init__(
        self,
        *,
        n_steps: int = 50,
        method: str = "gausslegendre",
        baseline: float = 0.0,
        internal_batch_size: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        store_params(
            self,
            n_steps=n_steps,
            method=method,
            baseline=baseline,
            internal_batch_size=internal_batch_size,
            batch_size=batch_size,
        )
        validate_params(self)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        values: torch.Tensor = (
            captum_module()
            .IntegratedGradients(model)
            .attribute(
                x,
                baselines=self.baseline,
                target=target,
                n_steps=self.n_steps,
                method=self.method,
                internal_batch_size=self.internal_batch_size,
            )
        )
        return values
