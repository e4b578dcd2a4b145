"""Augmented queries for membership attacks: flips and shifts of images, by name.

LiRA (Carlini et al., 2022) and the label-only attack (Choquette-Choo et al., 2021) query a
model on several augmented copies of each candidate: a model trained with augmentation has
seen those copies too, so their outputs carry membership signal. An augmentation maps a batch
of images of shape (n, ..., height, width) to a list of augmented batches of the same shape.
Register more with ``AUGMENTATIONS.add(name, function)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from trustlab.core.errors import DataError
from trustlab.core.registry import Registry

__all__ = ["AUGMENTATIONS", "augmentation_names", "augmented_queries"]

Augmentation = Callable[[torch.Tensor], list[torch.Tensor]]

MSG_NOT_IMAGES = (
    "The augmentation {name!r} needs images of shape (n_examples, ..., height, width); got "
    "shape {shape}. Tabular data take augmentations=None."
)

#: The augmentations by name.
AUGMENTATIONS: Registry[Augmentation] = Registry("augmentation")


def _images(name: str, x: torch.Tensor) -> None:
    if x.dim() < 3:
        raise DataError(MSG_NOT_IMAGES.format(name=name, shape=tuple(x.shape)))


@AUGMENTATIONS.register("hflip")
def horizontal_flip(x: torch.Tensor) -> list[torch.Tensor]:
    """The mirror image (flipped along the width)."""
    _images("hflip", x)
    return [x.flip(-1)]


def _shift(x: torch.Tensor, rows: int, columns: int) -> torch.Tensor:
    """``x`` moved by ``rows`` down and ``columns`` right, the uncovered pixels set to 0."""
    shifted = torch.roll(x, shifts=(rows, columns), dims=(-2, -1))
    if rows > 0:
        shifted[..., :rows, :] = 0
    elif rows < 0:
        shifted[..., rows:, :] = 0
    if columns > 0:
        shifted[..., :columns] = 0
    elif columns < 0:
        shifted[..., columns:] = 0
    return shifted


@AUGMENTATIONS.register("shift")
def one_pixel_shifts(x: torch.Tensor) -> list[torch.Tensor]:
    """The four one-pixel shifts (up, down, left, right), zero-filled at the border."""
    _images("shift", x)
    return [_shift(x, rows, columns) for rows, columns in ((-1, 0), (1, 0), (0, -1), (0, 1))]


def augmentation_names(value: object) -> tuple[str, ...]:
    """Normalise an ``augmentations`` parameter: a list of registered names, as a tuple.

    Raises ``ValueError`` for anything else (the parameter check turns it into the message).
    """
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(value)
    names = tuple(value)
    if not all(isinstance(name, str) and name in AUGMENTATIONS for name in names):
        raise ValueError(value)
    return names


def augmented_queries(x: torch.Tensor, names: Sequence[str] | None) -> torch.Tensor:
    """The queries of ``x``: itself, then every combination of the named augmentations.

    Each augmentation is applied to every query so far, so ``("hflip", "shift")`` gives the
    original and its mirror image, then the four shifts of each: 10 queries.

    Returns
    -------
    torch.Tensor, shape (n_queries, n_examples, ...)
    """
    queries = [x]
    for name in names or ():
        augment = AUGMENTATIONS.get(name)
        queries = queries + [view for query in queries for view in augment(query)]
    return torch.stack(queries)
