"""Occlusion: the drop of the class score when a square patch is replaced by a baseline."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.errors import DataError
from trustlab.core.params import Constraint, Integer, Real, store_params, validate_params
from trustlab.explain._captum import captum_module
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["Occlusion"]

MSG_NOT_IMAGE = "occlusion slides square windows over images of shape (n, C, H, W); got {shape}."


@register_explainer
class Occlusion(Explainer):
    """Occlusion (Zeiler and Fergus, 2014), through ``captum.attr.Occlusion``.

    A ``window x window`` patch, across all channels, slides over the image with step
    ``stride``; each pixel's attribution is the mean drop of the class score over the patches
    that cover it. Captum has no default window; trustlab's suits small images.

    Parameters
    ----------
    window : int, default=4
        Side of the occluding patch, in pixels.
    stride : int, default=2
        Step of the sliding window, in pixels.
    baseline : float, default=0.0
        The value written into the patch.
    perturbations_per_eval : int, default=64
        Occluded copies per forward pass.
    batch_size : int, optional
        Inputs per Captum call.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("canvas-cnn")
    >>> Occlusion().attribute(model=model, x=torch.rand(1, 1, 12, 12)).values.shape
    torch.Size([1, 1, 12, 12])
    """

    name = "occlusion"
    uses_gradients = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "window": Integer(low=1),
        "stride": Integer(low=1),
        "baseline": Real(),
        "perturbations_per_eval": Integer(low=1),
    }

    window: int
    stride: int
    baseline: float
    perturbations_per_eval: int

    def __init__(
        self,
        *,
        window: int = 4,
        stride: int = 2,
        baseline: float = 0.0,
        perturbations_per_eval: int = 64,
        batch_size: int | None = None,
    ) -> None:
        store_params(
            self,
            window=window,
            stride=stride,
            baseline=baseline,
            perturbations_per_eval=perturbations_per_eval,
            batch_size=batch_size,
        )
        validate_params(self)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        if x.dim() != 4:
            raise DataError(MSG_NOT_IMAGE.format(shape=tuple(x.shape)))
        channels = int(x.shape[1])
        values: torch.Tensor = (
            captum_module()
            .Occlusion(model)
            .attribute(
                x,
                sliding_window_shapes=(channels, self.window, self.window),
                strides=(channels, self.stride, self.stride),
                baselines=self.baseline,
                target=target,
                perturbations_per_eval=self.perturbations_per_eval,
            )
        )
        return values
