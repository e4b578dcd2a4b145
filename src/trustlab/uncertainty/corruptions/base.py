"""The registry of natural corruptions and :func:`corrupt`, which applies one reproducibly.

A corruption is a function ``fn(x, *, severity, generator) -> x'`` on a float tensor of images
of shape (n, channels, height, width) with values in [0, 1]; it returns a tensor of the same
shape, clipped to [0, 1]. Random corruptions draw from ``generator`` (a CPU generator), so the
same seed gives the same corrupted images on every device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from trustlab.core.checks import as_input_tensor
from trustlab.core.errors import DataError
from trustlab.core.params import Integer, Seed, check_param
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike

__all__ = ["CORRUPTIONS", "SEVERITIES", "CorruptionFn", "corrupt", "normal", "uniform"]

CorruptionFn = Callable[..., torch.Tensor]

#: Corruptions by name: ``CORRUPTIONS.get("gaussian_noise")``.
CORRUPTIONS: Registry[CorruptionFn] = Registry("corruption")

#: The severities of Hendrycks and Dietterich (2019).
SEVERITIES = (1, 2, 3, 4, 5)

MSG_IMAGES = (
    "x must be a float tensor of images, shape (n, channels, height, width), with values in "
    "[0, 1]; got {what}. Scale the pixels to [0, 1] first."
)
_SEVERITY = Integer(low=1, high=5)


def as_images(x: ArrayLike) -> torch.Tensor:
    """Check a batch of images with values in [0, 1] and return it as a float tensor."""
    tensor = as_input_tensor(x)
    if tensor.dim() != 4:
        raise DataError(MSG_IMAGES.format(what=f"shape {tuple(tensor.shape)}"))
    if not tensor.is_floating_point():
        tensor = tensor.float()
    low, high = float(tensor.min()), float(tensor.max())
    if low < 0.0 or high > 1.0:
        raise DataError(MSG_IMAGES.format(what=f"values in [{low:g}, {high:g}]"))
    return tensor


def uniform(shape: torch.Size, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Uniform draws on the CPU generator, moved to ``like``'s device and dtype."""
    return torch.rand(shape, generator=generator).to(like)


def normal(shape: torch.Size, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard normal draws on the CPU generator, moved to ``like``'s device and dtype."""
    return torch.randn(shape, generator=generator).to(like)


def corrupt(x: ArrayLike, *, corruption: str, severity: int, seed: int = 0) -> torch.Tensor:
    """Apply the registered corruption ``corruption`` at ``severity`` (1 to 5).

    Parameters
    ----------
    x : array-like, shape (n, channels, height, width)
        Images with values in [0, 1].
    corruption : str
        A name in :data:`CORRUPTIONS`.
    severity : int
        1 (mild) to 5 (severe).
    seed : int, default 0
        Seed of the random draws; the same seed gives the same output on every device.

    Returns
    -------
    torch.Tensor
        Corrupted images, same shape, device and dtype, values in [0, 1].

    Examples
    --------
    >>> import torch
    >>> x = torch.full((2, 1, 8, 8), 0.5)
    >>> a = corrupt(x, corruption="gaussian_noise", severity=3, seed=1)
    >>> bool((a == corrupt(x, corruption="gaussian_noise", severity=3, seed=1)).all())
    True
    """
    fn = CORRUPTIONS.get(corruption)
    severity = check_param(severity, _SEVERITY, name="severity", owner="corrupt")
    seed = check_param(seed, Seed, name="seed", owner="corrupt")
    images = as_images(x)
    generator = torch.Generator().manual_seed(seed)
    out = fn(images, severity=severity, generator=generator)
    return out.clamp(0.0, 1.0).to(images.dtype)
