"""A grid of input, heat-map overlay and deletion curve per example, as PNG (matplotlib)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from trustlab.core.plotting import new_figure, save_figure
from trustlab.core.typing import ArrayLike, PathLike
from trustlab.explain.attribution import as_maps
from trustlab.explain.metrics.deletion import PerturbationCurves

__all__ = ["plot_explanations"]


def _numpy(values: ArrayLike) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def plot_explanations(
    *,
    x: ArrayLike,
    attributions: ArrayLike,
    path: PathLike,
    curves: PerturbationCurves | None = None,
    titles: Sequence[str] | None = None,
    max_examples: int = 8,
) -> Path:
    """Draw one row per example: the input, the map over it, and its deletion curve.

    Parameters
    ----------
    x : array-like, shape (n, C, H, W)
        Images in [0, 1] (one channel: grey; three: RGB).
    attributions : array-like, shape (n, C, H, W) or (n, H, W)
        Maps, pooled over channels by summing.
    path : str or os.PathLike
        The PNG to write.
    curves : PerturbationCurves, optional
        Deletion (or insertion) curves of the same examples; a third column when given.
    titles : sequence of str, optional
        One title per row (e.g. the label and the prediction).
    max_examples : int, default=8
        Rows drawn at most.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    images = _numpy(x)
    maps = _numpy(as_maps(torch.from_numpy(_numpy(attributions))))
    rows = min(len(images), max_examples)
    columns = 3 if curves is not None else 2
    figure = new_figure(what="plot_explanations", figsize=(3 * columns, 3 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for row in range(rows):
        picture = images[row].transpose(1, 2, 0)
        picture = picture[..., 0] if picture.shape[-1] == 1 else np.clip(picture, 0, 1)
        axes[row, 0].imshow(picture, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_title(titles[row] if titles else f"example {row}", fontsize=9)
        axes[row, 1].imshow(picture, cmap="gray", vmin=0, vmax=1)
        scale = float(np.abs(maps[row]).max()) or 1.0
        axes[row, 1].imshow(maps[row], cmap="bwr", vmin=-scale, vmax=scale, alpha=0.6)
        axes[row, 1].set_title("attribution", fontsize=9)
        for axis in axes[row, :2]:
            axis.set_xticks([])
            axis.set_yticks([])
        if curves is not None:
            axes[row, 2].plot(curves.fractions, curves.scores[row])
            axes[row, 2].set_ylim(0, 1)
            axes[row, 2].set_title(f"{curves.kind}: AUC {curves.auc[row]:.3f}", fontsize=9)
            axes[row, 2].set_xlabel("fraction of pixels", fontsize=8)
    figure.tight_layout()
    return save_figure(figure, path, format="png", dpi=80)
