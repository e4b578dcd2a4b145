"""Scoring helpers shared by the task kinds: the public/private split and bootstrap intervals.

Every kind scores a submission twice, on the public and on the private part of its hidden
rows, with the same metrics; :func:`score_parts` runs one kind's metrics on both parts and
returns the :class:`~trustlab.tasks.base.ScoreResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from trustlab.core.metrics import bootstrap_ci
from trustlab.tasks.base import ScoreResult

PartMetrics = Callable[[np.ndarray], dict[str, Any]]


def stratified_public_mask(
    strata: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """``round(fraction * size)`` rows of every stratum, drawn at random, are public."""
    public = np.zeros(len(strata), dtype=bool)
    for value in np.unique(strata):
        where = np.flatnonzero(strata == value)
        chosen = rng.choice(where, size=round(len(where) * fraction), replace=False)
        public[chosen] = True
    return public


def score_parts(
    public: np.ndarray,
    part_metrics: PartMetrics,
    *,
    primary: str,
    notes: list[str] | None = None,
) -> ScoreResult:
    """Score both parts of the hidden rows: ``part_metrics(mask)`` on the public rows, then on
    the private ones; each part's score is its ``primary`` metric."""
    parts = {part: part_metrics(mask) for part, mask in (("public", public), ("private", ~public))}
    return ScoreResult(
        public_score=parts["public"][primary],
        private_score=parts["private"][primary],
        public_metrics=parts["public"],
        private_metrics=parts["private"],
        notes=[] if notes is None else notes,
    )


def mean(values: np.ndarray) -> float:
    """The mean of ``values`` as a float (a bootstrap metric of one array, ``values``)."""
    return float(np.mean(values))


def bootstrap_interval(
    metric: Callable[..., float],
    *,
    arrays: Mapping[str, np.ndarray],
    resamples: int,
    seed: int,
    stratify: str | None = None,
) -> list[float]:
    """The 95% percentile bootstrap interval of ``metric(**arrays)`` as ``[low, high]``."""
    ci = bootstrap_ci(metric, arrays=arrays, n_resamples=resamples, seed=seed, stratify=stratify)
    return [float(ci.low), float(ci.high)]
