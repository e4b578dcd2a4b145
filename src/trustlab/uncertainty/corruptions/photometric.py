"""Photometric corruptions (Hendrycks and Dietterich, 2019): contrast and brightness."""

from __future__ import annotations

import torch

from trustlab.uncertainty.corruptions.base import CORRUPTIONS

__all__ = ["brightness", "contrast"]

CONTRAST_FACTOR = (0.75, 0.5, 0.4, 0.3, 0.15)
BRIGHTNESS_SHIFT = (0.05, 0.1, 0.15, 0.2, 0.3)


@CORRUPTIONS.register("contrast")
def contrast(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Pull every value towards the image's mean: ``(x - mean) * c + mean``, ``c`` from 0.75
    down to 0.15."""
    del generator
    factor = CONTRAST_FACTOR[severity - 1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor + mean


@CORRUPTIONS.register("brightness")
def brightness(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Raise the HSV value channel by ``c`` (0.05 to 0.3), clipped at 1, keeping hue and
    saturation: every channel is scaled by ``min(V + c, 1) / V`` with ``V`` the largest
    channel (for grey images, ``x + c``)."""
    del generator
    shift = BRIGHTNESS_SHIFT[severity - 1]
    value = x.max(dim=1, keepdim=True).values
    target = (value + shift).clamp(max=1.0)
    scale = torch.where(value > 0, target / value.clamp_min(1e-12), torch.ones_like(value))
    black = value <= 0
    return torch.where(black, torch.full_like(x, shift), x * scale)
