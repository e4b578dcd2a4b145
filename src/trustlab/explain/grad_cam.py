"""Grad-CAM: a convolution layer's activations weighted by their mean gradients."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from trustlab.core.params import (
    Boolean,
    Constraint,
    NonEmptyStr,
    Optional,
    Options,
    store_params,
    validate_params,
)
from trustlab.explain._captum import captum_module
from trustlab.explain._layers import find_layer
from trustlab.explain.base import Explainer
from trustlab.explain.registry import register_explainer

__all__ = ["GradCam"]


@register_explainer
class GradCam(Explainer):
    """Grad-CAM (Selvaraju et al., 2017), through ``captum.attr.LayerGradCam``.

    ``ReLU(sum_k a_k A^k)`` with ``a_k`` the spatial mean of ``d f_target / d A^k`` over the
    layer's feature maps ``A^k``, upsampled to the input's size with bilinear interpolation as
    in the paper (``captum.attr.LayerAttribution.interpolate``). Captum's own default keeps
    negative values (``relu_attributions=False``); the paper's ReLU is the default here.

    Parameters
    ----------
    layer : str, optional
        The layer's name in ``model.named_modules()``; by default the model's last
        ``nn.Conv2d``.
    relu : bool, default=True
        Keep only positive evidence, as the paper does.
    interpolation : {"bilinear", "nearest", "bicubic"}, default="bilinear"
        How the layer map is upsampled to the input's height and width.
    batch_size : int, optional
        Inputs per Captum call.

    Notes
    -----
    The attribution has shape ``(n, 1, H, W)``: one map, shared by every input channel.

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> model = build_model("canvas-cnn")
    >>> GradCam().attribute(model=model, x=torch.rand(2, 1, 24, 24)).values.shape
    torch.Size([2, 1, 24, 24])
    """

    name = "grad_cam"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "layer": Optional(NonEmptyStr()),
        "relu": Boolean(),
        "interpolation": Options("bilinear", "nearest", "bicubic"),
    }

    layer: str | None
    relu: bool
    interpolation: str

    def __init__(
        self,
        *,
        layer: str | None = None,
        relu: bool = True,
        interpolation: str = "bilinear",
        batch_size: int | None = None,
    ) -> None:
        store_params(
            self, layer=layer, relu=relu, interpolation=interpolation, batch_size=batch_size
        )
        validate_params(self)

    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        attr = captum_module()
        _, module = find_layer(model, self.layer)
        layer_map = attr.LayerGradCam(model, module).attribute(
            x, target=target, relu_attributions=self.relu
        )
        values: torch.Tensor = attr.LayerAttribution.interpolate(
            layer_map, tuple(x.shape[2:]), interpolate_mode=self.interpolation
        )
        return values
