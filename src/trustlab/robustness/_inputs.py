"""The data checks every attack, evaluation and trainer of the pillar runs on arrival."""

from __future__ import annotations

import torch

from trustlab.core.checks import as_input_tensor, as_label_tensor, check_same_length
from trustlab.core.errors import DataError
from trustlab.core.typing import ArrayLike

__all__ = ["MSG_OUT_OF_BOUNDS", "check_in_bounds", "inputs_and_labels"]

MSG_OUT_OF_BOUNDS = (
    "x holds values outside the valid input range {bounds}: example {index} has {value:.6g}. "
    "Scale inputs to the range (e.g. divide pixels by 255) or pass bounds=(low, high)."
)


def inputs_and_labels(x: ArrayLike, y: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` as a floating-point tensor (n, ...) and ``y`` as int64 labels (n,), checked."""
    x_t = as_input_tensor(x)
    if not x_t.is_floating_point():
        x_t = x_t.float()
    y_t = as_label_tensor(y)
    check_same_length(first="x", n_first=x_t.shape[0], second="y", n_second=y_t.shape[0])
    return x_t, y_t


def check_in_bounds(x: torch.Tensor, bounds: tuple[float, float]) -> None:
    """DataError naming the first example of ``x`` (n, ...) with a value outside ``bounds``."""
    low, high = bounds
    rows = x.reshape(x.shape[0], -1)
    below = rows.amin(dim=1) < low
    bad = below | (rows.amax(dim=1) > high)
    if bool(bad.any()):
        index = int(torch.argmax(bad.to(torch.uint8)))
        value = float(rows[index].min()) if bool(below[index]) else float(rows[index].max())
        raise DataError(MSG_OUT_OF_BOUNDS.format(bounds=bounds, index=index, value=value))
