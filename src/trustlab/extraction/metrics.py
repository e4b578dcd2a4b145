"""Fidelity metrics: how closely a stolen copy reproduces its victim.

Every metric takes the victim and the copy either as models (then ``x`` is required and both
run on it, in eval mode, without gradients) or as outputs already computed on the same
inputs, so one forward pass can serve several metrics. Classifier outputs may be logits or
probabilities where only the arg-max matters (:func:`label_agreement`); :func:`kl_divergence`
and :func:`l1_distance` apply a softmax to a model's logits and expect precomputed outputs to
be probabilities.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    check_same_length,
    compute_logits,
)
from trustlab.core.errors import DataError
from trustlab.core.typing import ArrayLike

__all__ = [
    "MSG_NEEDS_X",
    "MSG_NOT_PROBABILITIES",
    "MSG_OUTPUT_SHAPE",
    "embedding_l2",
    "kl_divergence",
    "l1_distance",
    "label_agreement",
    "transfer_rate",
]

#: Rows of probability vectors must sum to one within this tolerance.
SUM_TOLERANCE = 1e-3
#: Probabilities of the copy are clipped at this value inside the logarithm of the KL.
KL_FLOOR = 1e-12

MSG_NEEDS_X = "{name} is a model, so pass the inputs x to run it on."
MSG_OUTPUT_SHAPE = (
    "{name} must be {what}; got shape {shape}. Pass a model or its outputs on the same inputs."
)
MSG_NON_FINITE = "{name} holds NaN or infinite values in row {index}."
MSG_NOT_PROBABILITIES = (
    "{name} must hold probability vectors (values in [0, 1], rows summing to 1); row {index} "
    "does not. Apply a softmax to logits first, or pass the model itself."
)
MSG_CLASSES = "victim and copy must have the same number of outputs; got {n_victim} and {n_copy}."
MSG_NONE_FOOL_COPY = (
    "None of the {n} adversarial examples fools the copy, so the transfer rate is undefined; "
    "craft stronger examples or leave copy=None to count all of them."
)


def _outputs(
    source: nn.Module | ArrayLike, *, name: str, x: torch.Tensor | None, batch_size: int
) -> tuple[torch.Tensor, bool]:
    """Return (outputs as a float64 or int64 CPU tensor, whether they came from a model)."""
    if isinstance(source, nn.Module):
        if x is None:
            raise DataError(MSG_NEEDS_X.format(name=name))
        return compute_logits(model=source, x=x, batch_size=batch_size).to(torch.float64), True
    tensor = as_input_tensor(source).cpu()
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    return tensor, False


def _two_d(tensor: torch.Tensor, *, name: str, what: str) -> torch.Tensor:
    if tensor.dim() != 2 or not tensor.is_floating_point():
        raise DataError(MSG_OUTPUT_SHAPE.format(name=name, what=what, shape=tuple(tensor.shape)))
    return tensor


def _probabilities(
    source: nn.Module | ArrayLike, *, name: str, x: torch.Tensor | None, batch_size: int
) -> torch.Tensor:
    tensor, from_model = _outputs(source, name=name, x=x, batch_size=batch_size)
    tensor = _two_d(tensor, name=name, what="probabilities of shape (n, n_classes)")
    if from_model:
        return F.softmax(tensor, dim=1)
    valid = ((tensor >= 0) & (tensor <= 1)).all(dim=1) & (
        (tensor.sum(dim=1) - 1).abs() <= SUM_TOLERANCE
    )
    if not bool(valid.all()):
        index = int(torch.argmin(valid.to(torch.uint8)))
        raise DataError(MSG_NOT_PROBABILITIES.format(name=name, index=index))
    return tensor


def _pair(
    victim: nn.Module | ArrayLike,
    copy: nn.Module | ArrayLike,
    x: ArrayLike | None,
    batch_size: int,
) -> tuple[torch.Tensor | None, int]:
    batch_size = check_batch_size(batch_size, owner="the fidelity metric")
    inputs = None if x is None else as_input_tensor(x)
    return inputs, batch_size


def _check_pair(victim: torch.Tensor, copy: torch.Tensor) -> None:
    check_same_length(
        first="victim outputs",
        n_first=victim.shape[0],
        second="copy outputs",
        n_second=copy.shape[0],
    )
    if victim.dim() == 2 and copy.dim() == 2 and victim.shape[1] != copy.shape[1]:
        raise DataError(MSG_CLASSES.format(n_victim=victim.shape[1], n_copy=copy.shape[1]))


def _labels(
    source: nn.Module | ArrayLike, *, name: str, x: torch.Tensor | None, batch_size: int
) -> torch.Tensor:
    tensor, _ = _outputs(source, name=name, x=x, batch_size=batch_size)
    if tensor.dim() == 1 and not tensor.is_floating_point():
        return as_label_tensor(tensor)
    tensor = _two_d(tensor, name=name, what="labels of shape (n,) or scores of shape (n, c)")
    return tensor.argmax(dim=1)


def _embeddings(
    source: nn.Module | ArrayLike, *, name: str, x: torch.Tensor | None, batch_size: int
) -> torch.Tensor:
    tensor, _ = _outputs(source, name=name, x=x, batch_size=batch_size)
    return _two_d(tensor, name=name, what="embeddings of shape (n, d)")


def _read_pair(
    read: Callable[..., torch.Tensor],
    victim: nn.Module | ArrayLike,
    copy: nn.Module | ArrayLike,
    x: ArrayLike | None,
    batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check the arguments, read the victim's and the copy's outputs with ``read``, compare."""
    inputs, batch_size = _pair(victim, copy, x, batch_size)
    v = read(victim, name="victim", x=inputs, batch_size=batch_size)
    c = read(copy, name="copy", x=inputs, batch_size=batch_size)
    _check_pair(v, c)
    return v, c


def label_agreement(
    *,
    victim: nn.Module | ArrayLike,
    copy: nn.Module | ArrayLike,
    x: ArrayLike | None = None,
    batch_size: int = 256,
) -> float:
    """Share of inputs on which the copy predicts the victim's label.

    Parameters
    ----------
    victim, copy : torch.nn.Module or array-like
        Models returning scores (n, n_classes), or their outputs on the same inputs: integer
        labels (n,) or scores (n, n_classes), whose arg-max is the label.
    x : array-like of shape (n, ...), optional
        Inputs; required where a model is given.
    batch_size : int, default=256
        Rows per forward pass.

    Returns
    -------
    float
        In [0, 1]; 1 means the copy agrees everywhere.

    Examples
    --------
    >>> import torch
    >>> label_agreement(victim=torch.tensor([0, 1, 2, 1]), copy=torch.tensor([0, 1, 1, 1]))
    0.75
    """
    v, c = _read_pair(_labels, victim, copy, x, batch_size)
    return float((v == c).to(torch.float64).mean())


def kl_divergence(
    *,
    victim: nn.Module | ArrayLike,
    copy: nn.Module | ArrayLike,
    x: ArrayLike | None = None,
    batch_size: int = 256,
) -> float:
    """Mean KL divergence ``KL(victim || copy)`` between probability vectors, in nats.

    ``KL(p || q) = sum_k p_k log(p_k / q_k)`` with ``0 log 0 = 0``; ``q`` is clipped below at
    1e-12 so that a copy giving zero probability to a class the victim uses yields a large
    but finite value.

    Parameters
    ----------
    victim, copy : torch.nn.Module or array-like
        Models returning logits (a softmax is applied), or probabilities (n, n_classes).
    x : array-like of shape (n, ...), optional
        Inputs; required where a model is given.
    batch_size : int, default=256
        Rows per forward pass.

    Returns
    -------
    float
        >= 0; 0 when the copy's probabilities equal the victim's.

    Examples
    --------
    >>> import torch
    >>> p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.25, 0.75]])
    >>> round(kl_divergence(victim=p, copy=q), 4)  # 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
    0.1438
    """
    p, q = _read_pair(_probabilities, victim, copy, x, batch_size)
    terms = torch.where(
        p > 0,
        p * (torch.log(p.clamp_min(KL_FLOOR)) - torch.log(q.clamp_min(KL_FLOOR))),
        torch.zeros_like(p),
    )
    return float(terms.sum(dim=1).mean().clamp_min(0.0))


def l1_distance(
    *,
    victim: nn.Module | ArrayLike,
    copy: nn.Module | ArrayLike,
    x: ArrayLike | None = None,
    batch_size: int = 256,
) -> float:
    """Mean L1 distance ``sum_k |p_k - q_k|`` between the probability vectors.

    Parameters
    ----------
    victim, copy : torch.nn.Module or array-like
        Models returning logits (a softmax is applied), or probabilities (n, n_classes).
    x : array-like of shape (n, ...), optional
        Inputs; required where a model is given.
    batch_size : int, default=256
        Rows per forward pass.

    Returns
    -------
    float
        In [0, 2].

    Examples
    --------
    >>> import torch
    >>> l1_distance(victim=torch.tensor([[0.5, 0.5]]), copy=torch.tensor([[0.25, 0.75]]))
    0.5
    """
    p, q = _read_pair(_probabilities, victim, copy, x, batch_size)
    return float((p - q).abs().sum(dim=1).mean())


def embedding_l2(
    *,
    victim: nn.Module | ArrayLike,
    copy: nn.Module | ArrayLike,
    x: ArrayLike | None = None,
    batch_size: int = 256,
) -> float:
    """Mean per-example L2 distance between the victim's and the copy's embeddings.

    Parameters
    ----------
    victim, copy : torch.nn.Module or array-like
        Encoders returning embeddings (n, d), or those embeddings.
    x : array-like of shape (n, ...), optional
        Inputs; required where a model is given.
    batch_size : int, default=256
        Rows per forward pass.

    Returns
    -------
    float
        >= 0; 0 when the embeddings are equal.

    Examples
    --------
    >>> import torch
    >>> embedding_l2(victim=torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
    ...              copy=torch.tensor([[3.0, 4.0], [1.0, 1.0]]))
    2.5
    """
    v, c = _read_pair(_embeddings, victim, copy, x, batch_size)
    return float(torch.linalg.vector_norm(v - c, dim=1).mean())


def transfer_rate(
    *,
    victim: nn.Module | ArrayLike,
    x_adv: ArrayLike,
    y: ArrayLike,
    copy: nn.Module | ArrayLike | None = None,
    batch_size: int = 256,
) -> float:
    """Share of adversarial examples crafted on the copy that also fool the victim.

    An example fools a model when the model's label differs from the true label ``y``
    (untargeted). Craft ``x_adv`` against the copy with any evasion attack (for example from
    ``trustlab.robustness``). With ``copy`` given, only the examples that fool the copy are
    counted, as in Papernot et al. (2017); without it, all of them are.

    Parameters
    ----------
    victim : torch.nn.Module or array-like
        The victim, or its outputs on ``x_adv`` (labels (n,) or scores (n, n_classes)).
    x_adv : array-like of shape (n, ...)
        The adversarial examples.
    y : array-like of int, shape (n,)
        Their true labels.
    copy : torch.nn.Module or array-like, optional
        The copy, or its outputs on ``x_adv``.
    batch_size : int, default=256
        Rows per forward pass.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    DataError
        If shapes disagree, values are not finite, or ``copy`` is given and no example fools
        it.

    Examples
    --------
    >>> import torch
    >>> transfer_rate(victim=torch.tensor([1, 0, 2, 0]), x_adv=torch.zeros(4, 3),
    ...               y=torch.tensor([0, 0, 0, 0]))
    0.5
    """
    batch_size = check_batch_size(batch_size, owner="transfer_rate")
    inputs = as_input_tensor(x_adv)
    labels = as_label_tensor(y)
    check_same_length(first="x_adv", n_first=inputs.shape[0], second="y", n_second=len(labels))
    victim_labels = _labels(victim, name="victim", x=inputs, batch_size=batch_size)
    check_same_length(
        first="victim outputs", n_first=len(victim_labels), second="y", n_second=len(labels)
    )
    counted = torch.ones(len(labels), dtype=torch.bool)
    if copy is not None:
        copy_labels = _labels(copy, name="copy", x=inputs, batch_size=batch_size)
        check_same_length(
            first="copy outputs", n_first=len(copy_labels), second="y", n_second=len(labels)
        )
        counted = copy_labels != labels
        if not bool(counted.any()):
            raise DataError(MSG_NONE_FOOL_COPY.format(n=len(labels)))
    fooled = (victim_labels != labels) & counted
    return float(fooled.sum()) / float(counted.sum())
