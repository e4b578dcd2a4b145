"""Helpers the membership attacks share: checked logits, per-example statistics, candidates."""

from __future__ import annotations

import numpy as np
import torch

from trustlab.core.checks import as_label_tensor, check_labels_in_range, check_logits
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike

MSG_QUERY_LOGITS_SHAPE = (
    "logits must have shape (n_examples, n_classes) or (n_queries, n_examples, n_classes); "
    "got shape {shape} for {n_examples} examples."
)
MSG_REFERENCE_LOGITS_SHAPE = (
    "reference_logits must have shape (n_models, n_examples, n_classes) or (n_models, "
    "n_queries, n_examples, n_classes) matching the target's logits {target}; got shape {shape}."
)
MSG_TWO_CLASSES = "Membership scores from logits need at least 2 classes; got {n_classes}."
MSG_NEEDS = (
    "{owner}.infer_from_logits needs {what}; call infer(model=..., x=..., y=...), which "
    "computes it, or pass it."
)
MSG_CANDIDATE_INDEX = (
    "candidate_index must be 1-D integer positions in the reference population, one per "
    "candidate, in [0, {n_population}); got {problem}."
)
MSG_NO_MODELS = (
    "Candidate {index} has no {which} reference model among the {n_models}; {owner} needs "
    "at least one for every candidate. Train more reference models (an even number gives every "
    "candidate as many IN as OUT models)."
)


def as_tensor(values: ArrayLike) -> torch.Tensor:
    """A float64 CPU copy of a tensor or an array."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().to(torch.float64)
    return torch.as_tensor(np.asarray(values), dtype=torch.float64)


def query_logits(logits: ArrayLike, y: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked float64 logits of shape (n_queries, n_examples, n_classes) and int64 labels.

    Two-dimensional logits are one query.
    """
    labels = as_label_tensor(y)
    tensor = as_tensor(logits)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3 or tensor.shape[1] != len(labels):
        raise DataError(
            MSG_QUERY_LOGITS_SHAPE.format(shape=tuple(tensor.shape), n_examples=len(labels))
        )
    for query in tensor:
        check_logits(query, n_examples=len(labels))
    if tensor.shape[2] < 2:
        raise DataError(MSG_TWO_CLASSES.format(n_classes=tensor.shape[2]))
    check_labels_in_range(labels, n_classes=tensor.shape[2])
    return tensor, labels


def reference_query_logits(reference_logits: ArrayLike, target: torch.Tensor) -> torch.Tensor:
    """Checked float64 reference logits of shape (n_models, n_queries, n_examples, n_classes)."""
    tensor = as_tensor(reference_logits)
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 4 or tuple(tensor.shape[1:]) != tuple(target.shape):
        raise DataError(
            MSG_REFERENCE_LOGITS_SHAPE.format(target=tuple(target.shape), shape=tuple(tensor.shape))
        )
    if not bool(torch.isfinite(tensor).all()):
        raise DataError(MSG_REFERENCE_LOGITS_SHAPE.format(target="finite", shape="with NaN"))
    return tensor


def true_class(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``logits[..., i, y_i]``: the logit of each example's true class."""
    index = y.reshape((1,) * (logits.dim() - 2) + (-1, 1)).expand(*logits.shape[:-1], 1)
    return logits.gather(-1, index).squeeze(-1)


def log_probability(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``log p_y``, the log softmax probability of the true class (the negated loss)."""
    return true_class(logits, y) - torch.logsumexp(logits, dim=-1)


def scaled_confidence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The logit-scaled confidence ``log(p_y) - log(1 - p_y)`` of Carlini et al. (2022).

    Computed without forming ``p_y``: it equals ``z_y - logsumexp_{j != y} z_j`` for logits
    ``z``, which stays finite and exact when ``p_y`` rounds to 1 in floating point.
    """
    others = logits.scatter(
        -1,
        y.reshape((1,) * (logits.dim() - 2) + (-1, 1)).expand(*logits.shape[:-1], 1),
        float("-inf"),
    )
    return true_class(logits, y) - torch.logsumexp(others, dim=-1)


def candidate_membership(
    candidate_index: ArrayLike | None, *, membership: np.ndarray, n_candidates: int
) -> torch.Tensor:
    """Which reference model trained on which candidate, shape (n_models, n_candidates).

    Without ``candidate_index`` the candidates are taken as OUT of every reference model.
    """
    n_models, n_population = membership.shape
    if candidate_index is None:
        return torch.zeros((n_models, n_candidates), dtype=torch.bool)
    index = np.asarray(
        candidate_index.detach().cpu().numpy()
        if isinstance(candidate_index, torch.Tensor)
        else candidate_index
    )
    problem = None
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        problem = f"shape {index.shape} of dtype {index.dtype}"
    elif len(index) != n_candidates:
        problem = f"{len(index)} positions for {n_candidates} candidates"
    elif len(index) and (index.min() < 0 or index.max() >= n_population):
        bad = index[(index < 0) | (index >= n_population)][0]
        problem = f"the position {int(bad)}"
    if problem is not None:
        raise ConfigurationError(
            MSG_CANDIDATE_INDEX.format(n_population=n_population, problem=problem)
        )
    return torch.from_numpy(membership[:, index])


def require_models(mask: torch.Tensor, *, which: str, owner: str) -> None:
    """Raise unless every candidate (column of ``mask``) has at least one model."""
    counts = mask.sum(dim=0)
    if bool((counts == 0).any()):
        index = int(torch.argmin(counts))
        raise DataError(
            MSG_NO_MODELS.format(index=index, which=which, n_models=mask.shape[0], owner=owner)
        )


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the models axis (0) of ``values`` where ``mask`` (models, examples) is True.

    ``values`` has shape (n_models, n_queries, n_examples); the mask broadcasts over queries.
    """
    weight = mask.unsqueeze(1).to(values.dtype)
    return (values * weight).sum(dim=0) / weight.sum(dim=0).clamp_min(1.0)


def masked_std(values: torch.Tensor, mask: torch.Tensor, *, pooled: bool) -> torch.Tensor:
    """Standard deviation over models where ``mask`` holds, per example or pooled (global).

    Returns shape (n_queries, n_examples); a pooled deviation is one value per query,
    broadcast over examples.
    """
    weight = mask.unsqueeze(1).to(values.dtype)
    mean = masked_mean(values, mask)
    squared = (values - mean) ** 2 * weight
    if pooled:
        variance = squared.sum(dim=(0, 2)) / weight.sum(dim=(0, 2)).clamp_min(1.0)
        return variance.sqrt().unsqueeze(1).expand_as(mean)
    return (squared.sum(dim=0) / weight.sum(dim=0).clamp_min(1.0)).sqrt()


def required(value: ArrayLike | None, *, owner: str, what: str) -> ArrayLike:
    """``value``, or :class:`ConfigurationError` if a value ``infer_from_logits`` needs is None."""
    if value is None:
        raise ConfigurationError(MSG_NEEDS.format(owner=owner, what=what))
    return value
