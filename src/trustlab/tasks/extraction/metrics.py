"""The scores of the ``model-extraction`` kind, from the extraction pillar's fidelity metrics.

Classifiers are scored by :func:`trustlab.extraction.metrics.label_agreement` with the victim's
labels (Jagielski et al., USENIX Security 2020) and with the true labels (the accuracy);
encoders by :func:`trustlab.extraction.metrics.embedding_l2` and the bounded
``l2_fidelity = 1 / (1 + l2 / scale)``. Each primary metric gets a percentile bootstrap
interval over the hidden inputs (paired: a stolen output stays with the victim's).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trustlab.extraction.metrics import embedding_l2, label_agreement
from trustlab.tasks._scoring import bootstrap_interval


def _agreement(*, stolen: np.ndarray, victim: np.ndarray) -> float:
    return label_agreement(y_true=victim, y_pred=stolen)


def classifier_metrics(
    *,
    stolen_labels: np.ndarray,
    victim_labels: np.ndarray,
    true_labels: np.ndarray,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """``agreement`` with the victim's labels and ``accuracy``, with a bootstrap interval.

    Parameters
    ----------
    stolen_labels, victim_labels, true_labels : numpy.ndarray of int, shape (n,)
        The stolen model's and the victim's predicted classes, and the true classes.
    resamples : int
        Bootstrap resamples for ``agreement_ci95``; 0 for none.
    seed : int
        The bootstrap's seed.

    Returns
    -------
    dict
        ``agreement``, ``accuracy``, ``n`` and, with resamples, ``agreement_ci95``.

    Examples
    --------
    >>> import numpy as np
    >>> classifier_metrics(stolen_labels=np.array([0, 1, 2, 2]),
    ...                    victim_labels=np.array([0, 1, 1, 2]),
    ...                    true_labels=np.array([0, 0, 1, 2]), resamples=0, seed=0)
    {'agreement': 0.75, 'accuracy': 0.5, 'n': 4}
    """
    result: dict[str, Any] = {
        "agreement": _agreement(stolen=stolen_labels, victim=victim_labels),
        "accuracy": _agreement(stolen=stolen_labels, victim=true_labels),
        "n": len(stolen_labels),
    }
    if resamples > 0:
        result["agreement_ci95"] = bootstrap_interval(
            _agreement,
            arrays={"stolen": stolen_labels, "victim": victim_labels},
            resamples=resamples,
            seed=seed,
        )
    return result


def embedding_metrics(
    *, stolen: np.ndarray, victim: np.ndarray, scale: float, resamples: int, seed: int
) -> dict[str, Any]:
    """Mean ``l2`` distance and the bounded ``l2_fidelity = 1 / (1 + l2 / scale)``.

    Parameters
    ----------
    stolen, victim : numpy.ndarray of float, shape (n, d)
        The stolen model's and the victim's output vectors on the same inputs.
    scale : float
        The victim's mean output norm on the hidden inputs (> 0).
    resamples : int
        Bootstrap resamples for ``l2_fidelity_ci95``; 0 for none.
    seed : int
        The bootstrap's seed.

    Returns
    -------
    dict
        ``l2_fidelity``, ``l2``, ``n`` and, with resamples, ``l2_fidelity_ci95``.

    Examples
    --------
    >>> import numpy as np
    >>> embedding_metrics(stolen=np.array([[3.0, 4.0], [0.0, 2.0]]),
    ...                   victim=np.array([[3.0, 4.0], [0.0, 0.0]]), scale=2.0,
    ...                   resamples=0, seed=0)
    {'l2_fidelity': 0.6666666666666666, 'l2': 1.0, 'n': 2}
    """

    def fidelity(*, stolen: np.ndarray, victim: np.ndarray) -> float:
        return 1.0 / (1.0 + embedding_l2(reference=victim, candidate=stolen) / scale)

    l2 = embedding_l2(reference=victim, candidate=stolen)
    result: dict[str, Any] = {
        "l2_fidelity": 1.0 / (1.0 + l2 / scale),
        "l2": l2,
        "n": len(stolen),
    }
    if resamples > 0:
        result["l2_fidelity_ci95"] = bootstrap_interval(
            fidelity, arrays={"stolen": stolen, "victim": victim}, resamples=resamples, seed=seed
        )
    return result
