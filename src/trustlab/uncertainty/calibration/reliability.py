"""Reliability diagrams as PNG (matplotlib, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trustlab.core.plotting import new_figure, save_figure
from trustlab.core.typing import ArrayLike, PathLike
from trustlab.uncertainty.calibration.metrics import (
    expected_calibration_error,
    reliability_bins,
)

__all__ = ["plot_reliability_diagram"]


def plot_reliability_diagram(
    *,
    y_true: ArrayLike,
    probs: ArrayLike,
    path: PathLike,
    n_bins: int = 15,
    binning: str = "width",
    title: str | None = None,
) -> Path:
    """Draw accuracy against top-label confidence per bin, with the diagonal, as a PNG.

    Bars show each bin's accuracy, red outlines the gap to its mean confidence (as in Guo et
    al., 2017, figure 1); a lower panel shows how many examples fall in each bin. The title
    gives the ECE.

    Parameters
    ----------
    y_true : array-like of int, shape (n_examples,)
    probs : array-like of float, shape (n_examples, n_classes)
    path : str or os.PathLike
        The PNG to write.
    n_bins : int, default 15
    binning : {"width", "mass"}, default "width"
    title : str, optional

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    bins = reliability_bins(y_true=y_true, probs=probs, n_bins=n_bins, binning=binning)
    ece = expected_calibration_error(y_true=y_true, probs=probs, n_bins=n_bins, binning=binning)
    figure = new_figure(what="plot_reliability_diagram", figsize=(5, 6))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = bins.upper - bins.lower
    filled = bins.count > 0
    accuracy = np.where(filled, bins.accuracy, 0.0)
    confidence = np.where(filled, bins.confidence, 0.0)
    top.bar(bins.lower, accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
    top.bar(
        bins.lower,
        confidence - accuracy,
        bottom=accuracy,
        width=width,
        align="edge",
        color="none",
        edgecolor="red",
        hatch="//",
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize="small")
    top.set_title(f"{title + ': ' if title else ''}ECE {ece:.4f} ({n_bins} {binning} bins)")
    bottom.bar(bins.lower, bins.count, width=width, align="edge", edgecolor="black")
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("examples")
    return save_figure(figure, path, dpi=120, bbox_inches="tight")
