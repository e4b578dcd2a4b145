"""Fairness: disaggregated metrics, group-fairness criteria and mitigations for PyTorch models.

Sensitive features are given per example as a 1-D array of codes or strings, a 2-D array with
one column per attribute, or a mapping ``{"sex": ..., "race": ...}``; several attributes form
intersectional groups named ``"sex=Female, race=Black"``.

* Metrics: :class:`GroupMetrics` (any metric overall, by group, as differences and ratios, with
  bootstrap intervals) and single-number criteria such as
  :func:`demographic_parity_difference` and :func:`equalized_odds_difference`.
* Mitigations, each targeting one criterion and reporting the gap it achieved:
  :class:`Reweighing` (pre-processing), :class:`FairnessConstrainedClassifier` and
  :class:`AdversarialDebiasing` (in-processing, on the PyTorch model itself) and
  :class:`GroupThresholds` (post-processing).
* Reductions: :class:`ExponentiatedGradient` (Agarwal et al., 2018) over any PyTorch model,
  for parity criteria and bounded group loss.
* Auditing beyond fixed groups: :func:`find_slices` (subgroup discovery over combinations of
  attributes, with sizes, intervals and tests) and :func:`consistency_score` (individual
  fairness as kNN agreement).
* Trade-offs: :func:`pareto_sweep` and :func:`plot_pareto`.

Every mitigation is registered in :data:`MITIGATIONS` by name (``"reweighing"``,
``"constrained"``, ``"adversarial_debiasing"``, ``"group_thresholds"``,
``"exponentiated_gradient"``), so a task spec can name
one: ``MITIGATIONS.build("reweighing", {"epochs": 5})``. :func:`group_name` and
:func:`group_names` give the names of (intersectional) groups.
"""

from trustlab.fairness._inputs import group_name, group_names
from trustlab.fairness.adversarial import AdversarialDebiasing
from trustlab.fairness.base import (
    MITIGATION_CRITERIA,
    MITIGATIONS,
    FairnessMitigation,
    MitigationReport,
    ModelMitigation,
)
from trustlab.fairness.consistency import consistency_score
from trustlab.fairness.constrained import FairnessConstrainedClassifier
from trustlab.fairness.exponentiated_gradient import ExponentiatedGradient
from trustlab.fairness.group_metrics import BUILTIN_METRICS, GroupMetrics
from trustlab.fairness.metrics import (
    CRITERIA,
    METHODS,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equal_opportunity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    fairness_gap,
    predictive_parity_difference,
    predictive_parity_ratio,
    selection_rate,
)
from trustlab.fairness.pareto import ParetoFront, ParetoPoint, pareto_sweep, plot_pareto
from trustlab.fairness.reweighing import Reweighing, reweighing_weights
from trustlab.fairness.subgroups import OUTCOMES, Slice, find_slices
from trustlab.fairness.thresholds import GroupThresholds, ThresholdRule

__all__ = [
    "BUILTIN_METRICS",
    "CRITERIA",
    "METHODS",
    "MITIGATIONS",
    "MITIGATION_CRITERIA",
    "OUTCOMES",
    "AdversarialDebiasing",
    "ExponentiatedGradient",
    "FairnessConstrainedClassifier",
    "FairnessMitigation",
    "GroupMetrics",
    "GroupThresholds",
    "MitigationReport",
    "ModelMitigation",
    "ParetoFront",
    "ParetoPoint",
    "Reweighing",
    "Slice",
    "ThresholdRule",
    "consistency_score",
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "fairness_gap",
    "find_slices",
    "group_name",
    "group_names",
    "pareto_sweep",
    "plot_pareto",
    "predictive_parity_difference",
    "predictive_parity_ratio",
    "reweighing_weights",
    "selection_rate",
]
