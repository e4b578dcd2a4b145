"""The ``README.md`` of a ``robustness`` task, from its template.

The layout is ``templates/robustness_readme.md.j2``; this module builds its context.
"""

from __future__ import annotations

from trustlab.tasks.readme import render_readme
from trustlab.tasks.robustness.params import RobustnessParams
from trustlab.tasks.spec import TaskSpec


def readme_text(
    spec: TaskSpec,
    params: RobustnessParams,
    *,
    input_shape: tuple[int, ...],
    n_train: int,
    n_classes: int,
    baseline_acc: float,
) -> str:
    """The task's README: the threat model, the input format, the files, submission, scoring.

    Parameters
    ----------
    spec : TaskSpec
        The task's spec.
    params : RobustnessParams
        Its parameters.
    input_shape : tuple of int
        The shape of one input.
    n_train : int
        Examples in ``train.npz``.
    n_classes : int
        The number of classes (the width of the logits).
    baseline_acc : float
        The sample submission's clean accuracy on the hidden set.

    Returns
    -------
    str
        Markdown text.
    """
    context = {
        "spec": spec,
        "params": params,
        "input_shape": input_shape,
        "n_train": n_train,
        "n_classes": n_classes,
        "baseline_acc": baseline_acc,
    }
    return render_readme("robustness", context=context)
