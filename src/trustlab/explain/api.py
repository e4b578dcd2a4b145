"""The front door of attributions: :func:`explain`."""

from __future__ import annotations

from typing import Any

from torch import nn

from trustlab.core.typing import ArrayLike
from trustlab.explain.attribution import Attribution
from trustlab.explain.base import TargetLike
from trustlab.explain.registry import make_explainer

__all__ = ["explain"]


def explain(
    *,
    model: nn.Module,
    x: ArrayLike,
    target: TargetLike = None,
    method: str = "integrated_gradients",
    **options: Any,
) -> Attribution:
    """Attribute a classifier's output to its inputs with a registered method.

    The one place of :mod:`trustlab.explain` that takes ``**options``: a task spec or a script
    names the method and its options as data, and the options are checked against the
    method's keyword-only signature (an unknown one is refused, listing the accepted ones).
    In code, building the method's class (``IntegratedGradients(n_steps=32)``) lets a type
    checker see them.

    Parameters
    ----------
    model : torch.nn.Module
        A classifier returning logits ``(n, n_classes)``, on any device.
    x : torch.Tensor or numpy.ndarray, shape (n, ...)
        The inputs.
    target : int or array-like of int, optional
        The explained class of each input; the model's prediction by default.
    method : str, default="integrated_gradients"
        One of :func:`~trustlab.explain.list_explainers`: ``saliency``,
        ``input_x_gradient``, ``integrated_gradients``, ``smoothgrad``, ``vargrad``,
        ``deeplift``, ``gradient_shap``, ``grad_cam``, ``occlusion``, ``lime``, ``kernel_shap``.
    **options
        The method's parameters (``n_steps=32``, ``layer="features.5"``, ...).

    Returns
    -------
    Attribution
        Values on the device of ``x``, with the method, its options and baselines.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Linear(4, 3)
    >>> a = explain(model=model, x=torch.ones(2, 4), method="saliency", abs=False)
    >>> a.values.shape, a.method
    (torch.Size([2, 4]), 'saliency')
    """
    return make_explainer(method, options=options).attribute(model=model, x=x, target=target)
