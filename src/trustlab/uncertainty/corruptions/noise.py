"""Noise corruptions of Hendrycks and Dietterich (2019): Gaussian, shot and impulse noise.

Severity constants are those of CIFAR-10-C (``make_cifar_c.py``), made for small images.
"""

from __future__ import annotations

import torch

from trustlab.uncertainty.corruptions.base import CORRUPTIONS, normal, uniform

__all__ = ["gaussian_noise", "impulse_noise", "shot_noise"]

GAUSSIAN_SIGMA = (0.04, 0.06, 0.08, 0.09, 0.10)
SHOT_PHOTONS = (500.0, 250.0, 100.0, 75.0, 50.0)
IMPULSE_AMOUNT = (0.01, 0.02, 0.03, 0.05, 0.07)


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Add ``N(0, sigma^2)`` noise to every value, ``sigma`` from 0.04 to 0.10."""
    return x + GAUSSIAN_SIGMA[severity - 1] * normal(x.shape, generator, x)


@CORRUPTIONS.register("shot_noise")
def shot_noise(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Poisson (photon) noise: ``Poisson(x * c) / c``, ``c`` from 500 down to 50 photons."""
    photons = SHOT_PHOTONS[severity - 1]
    rates = (x.detach().cpu().double() * photons).clamp_min(0.0)
    return (torch.poisson(rates, generator=generator) / photons).to(x)


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Salt-and-pepper noise: a fraction ``amount`` of the values (0.01 to 0.07) set to 0 or 1
    with equal probability, as ``skimage.util.random_noise(mode="s&p")``."""
    amount = IMPULSE_AMOUNT[severity - 1]
    hit = uniform(x.shape, generator, x) < amount
    salt = uniform(x.shape, generator, x) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)
