"""The ``README.md`` of a ``model-extraction`` task, from its template.

The layout is ``templates/model-extraction_readme.md.j2``; this module builds its context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustlab.tasks.extraction.spec import ExtractionParams
from trustlab.tasks.readme import render_readme
from trustlab.tasks.spec import TaskSpec


def readme_text(
    spec: TaskSpec,
    params: ExtractionParams,
    *,
    query_format: Mapping[str, Any],
    n_train: int,
    n_pool: int,
    n_eval: int,
    test_acc: float,
) -> str:
    """The task's README: the victim, the query format and limits, the files, how to submit.

    Parameters
    ----------
    spec : TaskSpec
        The task's spec.
    params : ExtractionParams
        Its parameters.
    query_format : mapping
        The content of ``query.json`` (``input_shape``, ``output_dim``, ...).
    n_train, n_pool, n_eval : int
        The sizes of the victim's training set, the public pool and the hidden inputs.
    test_acc : float
        The victim's accuracy on the hidden inputs.

    Returns
    -------
    str
        Markdown text.
    """
    rate = params.rate_limit
    limits = []
    if rate.requests is not None:
        limits.append(f"{rate.requests} requests")
    if rate.queries is not None:
        limits.append(f"{rate.queries} rows")
    context = {
        "spec": spec,
        "params": params,
        "query_format": query_format,
        "n_train": n_train,
        "n_pool": n_pool,
        "n_eval": n_eval,
        "test_acc": test_acc,
        "rate_limits": limits,
        "flattened": any(c.registry_name == "mlp" for c in params.architectures),
        "metric": spec.metric or ("agreement" if params.is_classifier else "l2_fidelity"),
    }
    return render_readme("model-extraction", context=context)
