"""ROC curves of membership attacks on log-log axes, as PNG (matplotlib, imported lazily)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from trustlab.core.metrics import roc_curve
from trustlab.core.plotting import new_figure, save_figure
from trustlab.core.typing import ArrayLike, PathLike

__all__ = ["plot_roc"]


def plot_roc(
    *,
    y_true: ArrayLike,
    scores: Mapping[str, ArrayLike],
    path: PathLike,
    title: str | None = None,
) -> Path:
    """Draw the ROC curve of each attack on log-log axes and write it as a PNG.

    Log-log axes show the low-FPR region where membership attacks are judged (Carlini et al.,
    2022); the diagonal is chance. Each curve is drawn through :func:`~trustlab.core.metrics.
    roc_curve`'s operating points; the legend gives each attack's TPR at 0.1% FPR by the
    threshold rule "largest TPR with FPR <= target, no interpolation".

    Parameters
    ----------
    y_true : array-like of {0, 1}, shape (n_examples,)
        1 for members, shared by every attack.
    scores : Mapping[str, array-like]
        Each attack's scores by its label in the legend.
    path : str or os.PathLike
        The PNG to write.
    title : str, optional

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    figure = new_figure(what="plot_roc", figsize=(5, 5))
    axes = figure.subplots()
    floor = 1.0
    for name, values in scores.items():
        curve = roc_curve(y_true=y_true, scores=values)
        smallest = curve.fpr[curve.fpr > 0]
        floor = min(floor, float(smallest.min()) if smallest.size else 1.0)
        last = int(np.searchsorted(curve.fpr, 0.001, side="right")) - 1
        axes.plot(curve.fpr, curve.tpr, label=f"{name} (TPR@0.1%={curve.tpr[last]:.3f})")
    axes.plot([floor, 1], [floor, 1], color="grey", linestyle="--", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(floor, 1)
    axes.set_ylim(floor, 1)
    axes.set_xlabel("false-positive rate")
    axes.set_ylabel("true-positive rate")
    if title:
        axes.set_title(title)
    axes.legend(loc="lower right", fontsize="small")
    return save_figure(figure, path, dpi=120, bbox_inches="tight")
