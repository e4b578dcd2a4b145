"""The ``README.md`` of a ``fairness`` task, from its template.

The layout is ``templates/fairness_readme.md.j2``; this module builds its context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from trustlab.tasks.fairness.params import FairnessParams
from trustlab.tasks.readme import render_readme
from trustlab.tasks.spec import TaskSpec


def readme_text(
    spec: TaskSpec,
    params: FairnessParams,
    *,
    rules: str,
    n_train: int,
    feature_names: list[str],
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
    labels : mapping of str to sequence of str
        Each sensitive attribute's group names, in code order.
    baseline_name : str
        The architecture of the sample submission.
    baseline : mapping
        The sample submission's metrics on the training rows (``accuracy``, ``dp_gap``).

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
        "numeric": [name for name in feature_names if "=" not in name],
        "categorical": list(
            dict.fromkeys(name.split("=", 1)[0] for name in feature_names if "=" in name)
        ),
        "labels": labels,
        "baseline_name": baseline_name,
        "baseline": baseline,
        "first": params.architectures[0],
    }
    return render_readme("fairness", context=context)
