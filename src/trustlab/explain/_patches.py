"""The interpretable features of LIME and KernelSHAP on images: square patches."""

from __future__ import annotations

import torch


def patch_mask(x: torch.Tensor, *, patch: int) -> torch.Tensor | None:
    """A feature mask grouping each ``patch x patch`` square (all channels) into one feature.

    Returns None for inputs that are not images (every feature is then its own), and a mask of
    shape ``(1, 1, H, W)`` on ``x``'s device otherwise, numbered row by row from 0.

    Examples
    --------
    >>> patch_mask(torch.zeros(1, 1, 4, 4), patch=2)[0, 0]
    tensor([[0, 0, 1, 1],
            [0, 0, 1, 1],
            [2, 2, 3, 3],
            [2, 2, 3, 3]])
    """
    if x.dim() != 4:
        return None
    height, width = int(x.shape[2]), int(x.shape[3])
    rows = torch.arange(height, device=x.device) // patch
    cols = torch.arange(width, device=x.device) // patch
    n_cols = (width + patch - 1) // patch
    return (rows[:, None] * n_cols + cols[None, :])[None, None]
