"""Gaussian blur (Hendrycks and Dietterich, 2019)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trustlab.uncertainty.corruptions.base import CORRUPTIONS

__all__ = ["gaussian_blur"]

BLUR_SIGMA = (0.4, 0.6, 0.7, 0.8, 1.0)
#: Kernel radius in standard deviations, as ``skimage.filters.gaussian``'s ``truncate``.
TRUNCATE = 4.0


@CORRUPTIONS.register("gaussian_blur")
def gaussian_blur(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur of each channel, ``sigma`` from 0.4 to 1 pixel, edges
    replicated (``skimage.filters.gaussian`` with ``mode="nearest"``)."""
    sigma = BLUR_SIGMA[severity - 1]
    radius = max(1, int(TRUNCATE * sigma + 0.5))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x)
    n, c, h, w = x.shape
    flat = x.reshape(n * c, 1, h, w)
    flat = F.pad(flat, (radius, radius, 0, 0), mode="replicate")
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = F.pad(flat, (0, 0, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    del generator
    return flat.reshape(n, c, h, w)
