"""The ``ood-detection`` task kind: tell in-distribution inputs from out-of-distribution ones.

Threat model and setting
------------------------
Not an attack: the team builds a detector for a published model. Building a task trains the
model (``digits-cnn`` by default) on the ``in_classes`` of a data set with the spec's seed and
publishes:

``model.safetensors``
    The model (``trustlab.load_model("model.safetensors")``); its classes are the
    in-distribution classes renumbered from 0.
``train.npz``
    ``x``, ``y``: the model's training examples, to fit detectors that need in-distribution
    data (Mahalanobis, kNN).
``test.npz``
    ``ids``, ``x``: a shuffled mix of held-out in-distribution examples and
    out-of-distribution ones: examples of the other classes (held-out classes) and synthetic
    inputs made from the seed (smoothed noise and random strokes, "letter-like").
``sample_submission.csv`` and ``README.md``
    Random scores (near chance), and the rules (``templates/ood-detection_readme.md.j2``).

A submission is a CSV ``id,score`` with one finite outlier score per test id, higher meaning
more likely out-of-distribution. On each part (public, private; stratified by where each input
comes from) it is scored by the ROC AUC with OOD as the positive class
(:func:`trustlab.uncertainty.auroc`, the default metric), the FPR at 95% TPR
(:func:`trustlab.uncertainty.fpr_at_tpr`: the share of OOD inputs accepted when 95% of the
in-distribution ones are), ``tnr@95`` (one minus it), AUPR-in and AUPR-out, with bootstrap
intervals of the AUROC and the FPR.
"""

from trustlab.tasks._csv import read_scores
from trustlab.tasks.ood_detection.kind import (
    MSG_CLASSES,
    MSG_TOO_SMALL,
    SOURCES,
    OODDetection,
    part_metrics,
    synthetic_inputs,
)
from trustlab.tasks.ood_detection.params import OODParams

__all__ = [
    "MSG_CLASSES",
    "MSG_TOO_SMALL",
    "SOURCES",
    "OODDetection",
    "OODParams",
    "part_metrics",
    "read_scores",
    "synthetic_inputs",
]
