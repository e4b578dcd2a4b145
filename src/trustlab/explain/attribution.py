"""The record every attribution method returns: :class:`Attribution`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trustlab.core.errors import DataError

__all__ = ["MSG_NOT_IMAGES", "Attribution", "as_maps"]

MSG_NOT_IMAGES = (
    "Attribution maps need image-shaped attributions, (n, C, H, W) or (n, H, W); got shape {shape}."
)
MSG_POOLING = "pooling must be 'sum', 'abs' or 'max_abs'; got {pooling!r}."


def as_maps(values: np.ndarray | torch.Tensor, *, pooling: str = "sum") -> torch.Tensor:
    """Pool attributions over channels into one ``(n, H, W)`` map per example.

    Parameters
    ----------
    values : array or tensor, shape (n, C, H, W) or (n, H, W)
        Attributions; (n, H, W) maps are returned as float tensors unchanged.
    pooling : {"sum", "abs", "max_abs"}, default="sum"
        ``sum`` adds the channels (signed, as Arras et al. 2022 pool relevance), ``abs`` adds
        their absolute values, ``max_abs`` takes the largest absolute value (Simonyan et al.
        2014's saliency map).

    Returns
    -------
    torch.Tensor, shape (n, H, W), on the device of ``values``

    Examples
    --------
    >>> as_maps(torch.ones(2, 3, 4, 4)).shape
    torch.Size([2, 4, 4])
    """
    tensor = values if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.get_default_dtype())
    if tensor.dim() == 3:
        return tensor
    if tensor.dim() != 4:
        raise DataError(MSG_NOT_IMAGES.format(shape=tuple(tensor.shape)))
    if pooling == "sum":
        return tensor.sum(dim=1)
    if pooling == "abs":
        return tensor.abs().sum(dim=1)
    if pooling == "max_abs":
        return tensor.abs().amax(dim=1)
    raise DataError(MSG_POOLING.format(pooling=pooling))


@dataclass(frozen=True, eq=False)
class Attribution:
    """Attributions of a batch of inputs, with how they were computed.

    Attributes
    ----------
    values : torch.Tensor
        One attribution per input feature, the shape of the inputs (Grad-CAM: ``(n, 1, H, W)``,
        the layer map upsampled to the input), on the inputs' device.
    target : torch.Tensor of int64, shape (n,)
        The class explained for each input (the model's prediction where none was given).
    method : str
        The registered name of the method.
    options : Mapping[str, Any]
        The method's parameters.
    baselines : torch.Tensor or None
        The reference inputs the method compared against, where it uses any.
    """

    values: torch.Tensor
    target: torch.Tensor
    method: str
    options: Mapping[str, Any] = field(default_factory=dict)
    baselines: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def maps(self, *, pooling: str = "sum") -> torch.Tensor:
        """One ``(H, W)`` map per example (see :func:`as_maps`)."""
        return as_maps(self.values, pooling=pooling)

    def numpy(self) -> np.ndarray:
        """The values as a float32 NumPy array on the CPU."""
        return self.values.detach().to("cpu", torch.float32).numpy()
