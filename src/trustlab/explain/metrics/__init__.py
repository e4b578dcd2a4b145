"""Explanation-quality metrics: faithfulness, stability and localisation.

* Faithfulness: :func:`deletion_curve` and :func:`insertion_curve` (Petsiuk et al., 2018),
  :func:`infidelity` (Yeh et al., 2019), :func:`roar_lite` (Hooker et al., 2019).
* Stability: :func:`max_sensitivity` (Yeh et al., 2019).
* Localisation against a ground-truth mask: :func:`pointing_game` (Zhang et al., 2018),
  :func:`relevance_mass_accuracy` and :func:`relevance_rank_accuracy` (Arras et al., 2022),
  :func:`attribution_iou`.
"""

from trustlab.explain.metrics.deletion import (
    PerturbationCurves,
    blur,
    deletion_curve,
    insertion_curve,
    perturbation_ranks,
)
from trustlab.explain.metrics.infidelity import infidelity
from trustlab.explain.metrics.localisation import (
    attribution_iou,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from trustlab.explain.metrics.roar import RoarResult, remove_top_pixels, roar_lite
from trustlab.explain.metrics.sensitivity import max_sensitivity

__all__ = [
    "PerturbationCurves",
    "RoarResult",
    "attribution_iou",
    "blur",
    "deletion_curve",
    "infidelity",
    "insertion_curve",
    "max_sensitivity",
    "perturbation_ranks",
    "pointing_game",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "remove_top_pixels",
    "roar_lite",
]
