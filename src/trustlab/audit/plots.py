"""Plots of the report, drawn with matplotlib (Agg) and kept as base64 PNG.

matplotlib is optional (the ``plot`` extra); without it the report has its tables and numbers
but no figures, and says so.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trustlab.audit.report import Figure
from trustlab.core.plotting import has_matplotlib, new_figure

__all__ = [
    "MSG_NO_MATPLOTLIB",
    "bar_figure",
    "curve_figure",
    "has_matplotlib",
    "heatmap_figure",
    "png_figure",
]

MSG_NO_MATPLOTLIB = (
    "Figures are left out: matplotlib is not installed (pip install 'trustlab[plot]')."
)


def png_figure(
    title: str, alt: str, draw: Callable[[Any], None], *, size: tuple[float, float] = (5.0, 3.6)
) -> Figure | None:
    """Draw with ``draw(axes)``; the PNG as a :class:`Figure` (None without matplotlib)."""
    if not has_matplotlib():
        return None
    fig = new_figure(what="the audit's figures", figsize=size, dpi=100)
    axes = fig.subplots()
    draw(axes)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return Figure(title=title, png_base64=base64.b64encode(buffer.getvalue()).decode(), alt=alt)


def file_figure(title: str, alt: str, path: Path) -> Figure:
    """A PNG already written to ``path`` (e.g. by a pillar's own plot function)."""
    return Figure(title=title, png_base64=base64.b64encode(path.read_bytes()).decode(), alt=alt)


def heatmap_figure(
    title: str, alt: str, matrix: np.ndarray, *, labels: Sequence[str], xlabel: str, ylabel: str
) -> Figure | None:
    """A matrix of counts with each cell's number written on it."""

    def draw(axes: Any) -> None:
        image = axes.imshow(matrix, cmap="Blues")
        axes.figure.colorbar(image, ax=axes)
        ticks = np.arange(len(labels))
        axes.set_xticks(ticks, labels=list(labels), fontsize=7)
        axes.set_yticks(ticks, labels=list(labels), fontsize=7)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        if len(labels) <= 20:
            high = matrix.max() if matrix.size else 0
            for (i, j), value in np.ndenumerate(matrix):
                colour = "white" if high and value > high / 2 else "black"
                axes.text(j, i, str(int(value)), ha="center", va="center", fontsize=6, color=colour)

    side = min(8.0, 3.0 + 0.3 * len(labels))
    return png_figure(title, alt, draw, size=(side + 1.0, side))


def curve_figure(
    title: str,
    alt: str,
    curves: dict[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    marker_x: float | None = None,
    diagonal: bool = False,
) -> Figure | None:
    """One or more curves; ``marker_x`` draws a dashed vertical line (e.g. the stated eps)."""

    def draw(axes: Any) -> None:
        for label, (xs, ys) in curves.items():
            axes.plot(list(xs), list(ys), marker="o", markersize=3, label=label)
        if diagonal:
            axes.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
        if marker_x is not None:
            axes.axvline(marker_x, linestyle="--", color="grey", linewidth=1)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.set_ylim(-0.02, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)

    return png_figure(title, alt, draw)


def bar_figure(
    title: str,
    alt: str,
    values: dict[str, float],
    *,
    intervals: dict[str, tuple[float, float]] | None = None,
    ylabel: str,
) -> Figure | None:
    """Bars, one per key, with error bars from ``intervals`` where given."""

    def draw(axes: Any) -> None:
        names = list(values)
        heights = [values[name] for name in names]
        errors = None
        if intervals:
            errors = np.array(
                [
                    [
                        max(0.0, values[n] - intervals.get(n, (values[n], values[n]))[0]),
                        max(0.0, intervals.get(n, (values[n], values[n]))[1] - values[n]),
                    ]
                    for n in names
                ]
            ).T
        axes.bar(range(len(names)), heights, yerr=errors, capsize=3, color="#4c78a8")
        axes.set_xticks(range(len(names)), labels=names, rotation=30, ha="right", fontsize=7)
        axes.set_ylabel(ylabel)
        axes.set_ylim(0, 1.02)
        axes.grid(axis="y", alpha=0.3)

    return png_figure(title, alt, draw)
