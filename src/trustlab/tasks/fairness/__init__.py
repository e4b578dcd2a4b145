"""The ``fairness`` task kind: an accurate classifier with a bounded fairness gap.

Threat model and setting
------------------------
Not an attack: the team is the model builder. It receives the training split of the task's
data set (``dataset``: UCI Adult, Kohavi 1996; ProPublica's COMPAS; Statlog German Credit)
with its encoding and the sensitive attribute(s) of every row, trains a
classifier by any method it likes (pre-processing, in-processing, post-processing folded into
the weights), and submits the weights of one architecture from the task's list. The server
reads them in a limited process (:mod:`trustlab.tasks.model_submission`: safetensors or a
``weights_only`` state dict, the architecture from the task, never from the file) and scores
the model on hidden rows of the data set's test split.

Scoring
-------
Predictions are the arg-max of the model's two logits (a tie goes to label 0). On
each part of the hidden rows (public and private, stratified by group and label):

* ``accuracy``: the share of rows predicted correctly.
* ``dp_gap``: the demographic-parity difference, the largest minus the smallest rate of
  predicting label 1 across the groups of the sensitive attribute(s) (Calders, Kamiran and
  Pechenizkiy, 2009; Dwork et al., 2012). With two attributes the groups are their
  intersections, named as :mod:`trustlab.fairness` names them (``sex=Female, race=Black``).
  Groups with fewer than ``min_group_size`` rows in a part are left out of the gaps, whose
  value on a handful of rows is mostly noise.
* ``eo_gap``: the equalized-odds difference of Hardt, Price and Srebro (2016), the larger of
  the spreads of the true-positive and of the false-positive rates across the same groups (a
  group without positive, or without negative, rows is left out of that rate's spread).
* ``score``, the primary metric, by the task's penalty rule on the gap of its ``criterion``
  (``demographic_parity``: ``dp_gap``, the default; ``equalized_odds``: ``eo_gap``; the other
  gap is shown, not scored):

  - ``linear`` (default): ``accuracy - slope * max(0, gap - gap_bound)``. Within the bound
    the score is the accuracy; beyond it every point of gap costs ``slope`` points. The score
    is not clipped and can be negative.
  - ``zero``: ``accuracy`` if ``gap <= gap_bound``, else 0.

  Percentile bootstrap intervals (95%, resampled within each group so every resample keeps
  every group's size) are given for ``score``, ``accuracy`` and the scored gap.

With binary labels the two gaps are the same whichever label counts as "positive", so the task
has no ``positive_label`` parameter.

Artefacts
---------
``train.npz``
    ``x`` float32 (n, D), ``y`` int64 (n,) (Adult: 1 = ``>50K``), and one int64 code array per
    sensitive attribute, named after it (``sex``, ``race``).
``encoding.json``
    ``feature_names`` (D), ``label_names``, ``sensitive`` (attribute to its group names, code
    order) and ``groups`` (the names of the scored groups, intersections included).
``sample_submission.safetensors``
    An unconstrained baseline of the first listed architecture (or ``baseline.architecture``),
    trained at build time with the spec's seed: a valid submission to start from.
``README.md``
    The encoding, the groups, the scoring rule in words and how to submit
    (``templates/fairness_readme.md.j2``).

Examples
--------
>>> from trustlab.tasks import parse_spec
>>> spec = parse_spec({"id": "fair-demo", "kind": "fairness", "title": "Fair income",
...                    "dataset": "adult", "params": {"sensitive": ["sex"]}})
>>> from trustlab.tasks.registry import get_kind
>>> params = get_kind("fairness")._params(spec)  # in_features filled in from the data set
>>> spec.metric, params.criterion, params.architectures[0].arguments["in_features"]
('score', 'demographic_parity', 89)

References
----------
.. [1] R. Kohavi, "Scaling Up the Accuracy of Naive-Bayes Classifiers: a Decision-Tree
   Hybrid", KDD 1996 (the Adult data).
.. [2] T. Calders, F. Kamiran and M. Pechenizkiy, "Building Classifiers with Independency
   Constraints", ICDM Workshops 2009.
.. [3] C. Dwork, M. Hardt, T. Pitassi, O. Reingold and R. Zemel, "Fairness Through Awareness",
   ITCS 2012.
.. [4] M. Hardt, E. Price and N. Srebro, "Equality of Opportunity in Supervised Learning",
   NeurIPS 2016.
"""

from trustlab.tasks.fairness.kind import (
    BATCH_SIZE,
    MSG_BAD_SHAPE_SPEC,
    MSG_BASELINE,
    MSG_DATASET,
    MSG_FEW_GROUPS,
    MSG_FORWARD_FAILED,
    MSG_LOWER_IS_BETTER,
    MSG_OUTPUT_NON_FINITE,
    MSG_OUTPUT_SHAPE,
    MSG_OUTPUT_TYPE,
    MSG_TOO_MANY_ROWS,
    VALIDATION_ROWS,
    Fairness,
)
from trustlab.tasks.fairness.metrics import (
    equalized_odds_gap,
    group_codes,
    group_names,
    part_metrics,
)
from trustlab.tasks.fairness.params import (
    DATASET_ATTRIBUTES,
    GAP_TOLERANCE,
    MSG_DUPLICATE_ATTRIBUTE,
    Attribute,
    BaselineRecipe,
    FairnessParams,
    PenaltyRule,
    adult_feature_count,
)

__all__ = [
    "BATCH_SIZE",
    "DATASET_ATTRIBUTES",
    "GAP_TOLERANCE",
    "MSG_BAD_SHAPE_SPEC",
    "MSG_BASELINE",
    "MSG_DATASET",
    "MSG_DUPLICATE_ATTRIBUTE",
    "MSG_FEW_GROUPS",
    "MSG_FORWARD_FAILED",
    "MSG_LOWER_IS_BETTER",
    "MSG_OUTPUT_NON_FINITE",
    "MSG_OUTPUT_SHAPE",
    "MSG_OUTPUT_TYPE",
    "MSG_TOO_MANY_ROWS",
    "VALIDATION_ROWS",
    "Attribute",
    "BaselineRecipe",
    "Fairness",
    "FairnessParams",
    "PenaltyRule",
    "adult_feature_count",
    "equalized_odds_gap",
    "group_codes",
    "group_names",
    "part_metrics",
]
