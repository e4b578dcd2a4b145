"""GradientSHAP: expected gradients between the input and baselines drawn at random."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.checks import as_input_tensor
from trustlab.core.errors import DataError
from trustlab.core.params import (
    Constraint,
    InstanceOf,
    Integer,
    Optional,
    Real,
    Seed,
    store_params,
    validate_params,
)
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["GradientShap"]

MSG_BASELINES_SHAPE = (
    "The baselines of gradient_shap must be reference inputs of shape (k, {shape}); got shape "
    "{got}. Pass a few rows of training data, or leave baselines out for a zero input."
)


@register_explainer
class GradientShap(Explainer):
    """GradientSHAP (Lundberg and Lee, 2017), through ``captum.attr.GradientShap``.

    For each input, ``n_samples`` times: draw a baseline from ``baselines``, a point at a uniform
    random place on the straight line to the input (plus Gaussian noise of ``stdevs``), and take
    gradient x (input - baseline); the mean approximates SHAP values with the baselines as the
    background distribution. Defaults are Captum's (5 samples, no noise); without
    ``baselines`` the background is one zero input (then it is a sampled Integrated Gradients).

    Parameters
    ----------
    baselines : torch.Tensor, shape (k, ...), optional
        Background inputs (a few rows of training data). Default: one zero input.
    n_samples : int, default=5
        Random draws per input.
    stdevs : float, default=0.0
        Standard deviation of the noise added to each draw.
    seed : int, default=0
        Seeds the draws.
    batch_size : int, optional
        Inputs per Captum call.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(3, 2)
    >>> GradientShap().attribute(model=model, x=torch.ones(2, 3)).values.shape
    torch.Size([2, 3])
    """

    name = "gradient_shap"
    uses_randomness = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "baselines": Optional(InstanceOf(torch.Tensor, "a torch.Tensor of reference inputs")),
        "n_samples": Integer(low=1),
        "stdevs": Real(low=0),
        "seed": Seed,
    }

    baselines: torch.Tensor | None
    n_samples: int
    stdevs: float
    seed: int

    def __init__(
        self,
        *,
        baselines: torch.Tensor | None = None,
        n_samples: int = 5,
        stdevs: float = 0.0,
        seed: int = 0,
        batch_size: int | None = None,
    ) -> None:
        store_params(
            self,
            baselines=baselines,
            n_samples=n_samples,
            stdevs=stdevs,
            seed=seed,
            batch_size=batch_size,
        )
        validate_params(self)

    def get_params(self) -> dict[str, object]:
        params = super().get_params()
        if self.baselines is not None:
            params["baselines"] = f"tensor of shape {tuple(self.baselines.shape)}"
        return params

    def _reference(self, x: torch.Tensor) -> torch.Tensor:
        if self.baselines is None:
            return torch.zeros_like(x[:1])
        reference = as_input_tensor(self.baselines)
        if tuple(reference.shape[1:]) != tuple(x.shape[1:]):
            raise DataError(
                MSG_BASELINES_SHAPE.format(
                    shape=", ".join(map(str, x.shape[1:])), got=tuple(reference.shape)
                )
            )
        return reference.to(x.device, x.dtype)

    def _baselines(self, x: torch.Tensor) -> torch.Tensor | None:
        return self._reference(x)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        values: torch.Tensor = (
            captum_module()
            .GradientShap(model)
            .attribute(
                x,
                baselines=self._reference(x),
                n_samples=self.n_samples,
                stdevs=self.stdevs,
                target=target,
            )
        )
        return values
