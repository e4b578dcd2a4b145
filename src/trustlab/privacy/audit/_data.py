"""The check every audit runs on its trials: one 0/1 label and one finite score each."""

from __future__ import annotations

import numpy as np

from trustlab.core.checks import check_same_length
from trustlab.core.metrics.roc import as_binary_labels, as_finite_scores, to_numpy
from trustlab.core.typing import ArrayLike, FloatArray


def trials(labels: ArrayLike, scores: ArrayLike, *, name: str) -> tuple[np.ndarray, FloatArray]:
    """``labels`` (named ``name`` in messages) as int64 0/1 and ``scores`` as finite float64.

    Raises
    ------
    DataError
        If either is not 1-D, the labels are not 0/1 with both values present, a score is not
        finite, or the lengths differ.
    """
    raw_labels, raw_scores = to_numpy(labels), to_numpy(scores)
    if raw_labels.ndim == 1 and raw_scores.ndim == 1:
        check_same_length(
            first=name, n_first=len(raw_labels), second="scores", n_second=len(raw_scores)
        )
    return as_binary_labels(raw_labels, name=name), as_finite_scores(raw_scores)
