"""The ``README.md`` of a ``fairness`` task, from its template.

The layout is ``templates/fairness_readme.md.j2``; this module builds its context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trustlab.tasks.fairness.params import CRITERION_WORDS, FairnessParams
from trustlab.tasks.readme import render_readme
from trustlab.tasks.spec import TaskSpec

#: What each data set asks, and how its rows are encoded, for the README.
DATASET_TEXT: dict[str, dict[str, str]] = {
    "adult": {
        "task": "Predict whether a person's income is over $50K (UCI Adult, 1994 census)",
        "rows": "Rows with an unknown ('?') value are dropped; the hidden rows come from "
        "Adult's official test split.",
        "standardized": "Adult's training split",
        "dropped": "`education` is dropped (`education-num` carries the same information).",
    },
    "compas": {
        "task": "Predict two-year recidivism (ProPublica's COMPAS data, Broward County)",
        "rows": "ProPublica's filter is applied (6,172 rows); the hidden rows come from a "
        "fixed, label-stratified 30% test split (seed 0).",
        "standardized": "the training split",
        "dropped": "`decile_score` and `score_text` (the COMPAS tool's own output) are not "
        "features.",
    },
    "german": {
        "task": "Predict whether a loan applicant is a good credit risk (Statlog German Credit)",
        "rows": "The hidden rows come from a fixed, label-stratified 30% test split (seed 0).",
        "standardized": "the training split",
        "dropped": "`sex` comes from the one-hot column `personal_status_sex` (personal "
        "status and sex together).",
    },
}


def readme_text(
    spec: TaskSpec,
    params: FairnessParams,
    *,
    rules: str,
    n_train: int,
    feature_names: list[str],
    label_names: list[str],
    labels: Mapping[str, Sequence[str]],
    baseline_name: str,
    baseline: Mapping[str, Any],
) -> str:
    """The task's README: the scoring rule, the files, the encoding and how to submit.

    Parameters
    ----------
    spec : TaskSpec
        The task's spec.
    params : FairnessParams
        Its parameters.
    rules : str
        The scoring rule in words (the kind's ``rules_text``).
    n_train : int
        Rows of ``train.npz``.
    feature_names : list of str
        The columns of ``x``; one-hot columns are named ``column=value``.
    label_names : list of str
        ``label_names[k]`` names label ``k``.
    labels : mapping of str to sequence of str
        Each sensitive attribute's group names, in code order.
    baseline_name : str
        The architecture of the sample submission.
    baseline : mapping
        The sample submission's metrics on the training rows (``accuracy``, ``dp_gap``,
        ``eo_gap``).

    Returns
    -------
    str
        Markdown text.
    """
    context = {
        "spec": spec,
        "params": params,
        "rules": rules,
        "n_train": n_train,
        "n_features": len(feature_names),
        "numeric": [name for name in feature_names if "=" not in name],
        "categorical": list(
            dict.fromkeys(name.split("=", 1)[0] for name in feature_names if "=" in name)
        ),
        "labels": labels,
        "label_names": label_names,
        "data": DATASET_TEXT[str(spec.dataset)],
        "criterion_words": CRITERION_WORDS[params.criterion],
        "baseline_name": baseline_name,
        "baseline": baseline,
        "first": params.architectures[0],
    }
    return render_readme("fairness", context=context)
