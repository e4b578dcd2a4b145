"""Checks shared by the explanation metrics: maps and ground-truth masks as arrays."""

from __future__ import annotations

import numpy as np
import torch

from trustlab.core.errors import DataError
from trustlab.core.typing import ArrayLike
from trustlab.explain.attribution import as_maps

MSG_MASK_SHAPE = (
    "masks must have one (H, W) mask per map: shape {want}; got {got}. Pass boolean masks of "
    "the inputs' height and width."
)
MSG_MAPS_NON_FINITE = "The attribution map of example {index} holds NaN or an infinity."
MSG_EMPTY_MASK = "The mask of example {index} is empty; every example needs a non-empty mask."


def maps_array(attributions: ArrayLike, *, pooling: str = "sum") -> np.ndarray:
    """Attributions pooled over channels into float64 maps of shape (n, H, W), checked finite."""
    values = attributions if isinstance(attributions, torch.Tensor) else np.asarray(attributions)
    maps = as_maps(values, pooling=pooling).detach().to("cpu", torch.float64).numpy()
    finite = np.isfinite(maps).reshape(len(maps), -1).all(axis=1)
    if not finite.all():
        raise DataError(MSG_MAPS_NON_FINITE.format(index=int(np.argmin(finite))))
    return maps


def masks_array(masks: ArrayLike, *, shape: tuple[int, ...]) -> np.ndarray:
    """Masks as a boolean array of ``shape`` (n, H, W), each with at least one pixel."""
    values = masks.detach().cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    if values.shape != shape:
        raise DataError(MSG_MASK_SHAPE.format(want=shape, got=values.shape))
    boolean = values.astype(bool)
    sizes = boolean.reshape(len(boolean), -1).sum(axis=1)
    if (sizes == 0).any():
        raise DataError(MSG_EMPTY_MASK.format(index=int(np.argmin(sizes))))
    return boolean
