"""Fidelity metrics: how closely a stolen copy reproduces its victim.

Every metric is a function of arrays computed on the same inputs, so one forward pass of each
model serves all of them. Metrics that compare labels take ``y_true`` (the victim's labels,
the ones the copy should reproduce) and ``y_pred`` (the copy's); metrics that compare output
vectors take ``reference`` (the victim's) and ``candidate`` (the copy's). Labels may be given
as integer labels ``(n,)`` or as scores ``(n, n_classes)``, whose arg-max is the label.

Examples
--------
>>> import torch
>>> from trustlab.core.training import predict_logits
>>> victim, copy = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
>>> x = torch.randn(20, 4)
>>> v, c = predict_logits(victim, x), predict_logits(copy, x)  # computed once
>>> 0.0 <= label_agreement(y_true=v, y_pred=c) <= 1.0
True
>>> kl_divergence(reference=v.softmax(dim=1), candidate=c.softmax(dim=1)) >= 0
True

The arguments ``victim``, ``copy``, ``x``, ``batch_size`` (and ``x_adv``, ``y`` of
:func:`transfer_rate`), which also took models, are deprecated since 0.2 and will be removed in
0.4.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_same_length,
    compute_logits,
)
from trustlab.core.errors import DataError
from trustlab.core.params import Integer, check_param
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
#: Rows per forward pass of a model given through the deprecated arguments.
LEGACY_BATCH_SIZE = 256

MSG_NEEDS_X = "{name} is a model, so pass the inputs x to run it on."
MSG_OUTPUT_SHAPE = "{name} must be {what}; got shape {shape}."
MSG_NOT_PROBABILITIES = (
    "{name} must hold probability vectors (values in [0, 1], rows summing to 1); row {index} "
    "does not. Apply a softmax to logits first."
)
MSG_CLASSES = (
    "{first} and {second} must have the same number of outputs; got {n_first} and {n_second}."
)
MSG_NONE_FOOL_COPY = (
    "None of the {n} adversarial examples fools the copy, so the transfer rate is undefined; "
    "craft stronger examples or leave y_pred_copy=None to count all of them."
)
MSG_MISSING = "{owner}() needs the keyword argument {name!r}."
MSG_MIXED = "{owner}() takes {new} or the deprecated {old}, not both."
MSG_DEPRECATED = (
    "The arguments {old} of {owner}() are deprecated in 0.2 and will be removed in 0.4; pass "
    "the outputs as {new} instead (compute a model's outputs once, e.g. with "
    "trustlab.core.training.predict_logits)."
)

_LEGACY_BATCH = Integer(low=1)
_OLD = ("victim", "copy")

#: An output array as read: (name for messages, values as float64 or int64, from a model?).
_Read = tuple[str, torch.Tensor, bool]


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"{name}=" for name in names)


def _array(value: ArrayLike, *, name: str) -> _Read:
    tensor = as_input_tensor(value).cpu()
    if tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    return name, tensor, False


def _legacy(
    source: nn.Module | ArrayLike, *, name: str, x: torch.Tensor | None, batch_size: int
) -> _Read:
    """Outputs from a deprecated argument: a model run on ``x``, or an array."""
    if not isinstance(source, nn.Module):
        return _array(source, name=name)
    if x is None:
        raise DataError(MSG_NEEDS_X.format(name=name))
    logits = compute_logits(model=source, x=x, batch_size=batch_size).to(torch.float64)
    return name, logits, True


def _missing(owner: str, **arguments: object) -> TypeError:
    name = next(name for name, value in arguments.items() if value is None)
    return TypeError(MSG_MISSING.format(owner=owner, name=name))


def _deprecated(
    owner: str,
    *,
    old: tuple[str, ...],
    new: tuple[str, ...],
    batch_size: int | None,
    depth: int,
) -> int:
    """Warn that ``old`` are deprecated, pointing at the caller of the metric (``depth`` frames
    above this one); return the batch size for the models."""
    warnings.warn(
        MSG_DEPRECATED.format(owner=owner, old=_names(old), new=_names(new)),
        FutureWarning,
        stacklevel=depth + 1,
    )
    size: int = check_param(
        LEGACY_BATCH_SIZE if batch_size is None else batch_size,
        _LEGACY_BATCH,
        name="batch_size",
        owner=owner,
    )
    return size


def _compared(
    owner: str,
    names: tuple[str, str],
    first: ArrayLike | None,
    second: ArrayLike | None,
    *,
    victim: nn.Module | ArrayLike | None,
    copy: nn.Module | ArrayLike | None,
    x: ArrayLike | None,
    batch_size: int | None,
) -> tuple[_Read, _Read]:
    """The two arrays a metric compares, from its arguments or from the deprecated ones."""
    if victim is None and copy is None and x is None and batch_size is None:
        if first is None or second is None:
            raise _missing(owner, **{names[0]: first, names[1]: second})
        return _array(first, name=names[0]), _array(second, name=names[1])
    if first is not None or second is not None:
        raise TypeError(MSG_MIXED.format(owner=owner, new=_names(names), old=_names(_OLD)))
    size = _deprecated(owner, old=_OLD, new=names, batch_size=batch_size, depth=3)
    if victim is None or copy is None:
        raise _missing(owner, victim=victim, copy=copy)
    inputs = None if x is None else as_input_tensor(x)
    return (
        _legacy(victim, name="victim", x=inputs, batch_size=size),
        _legacy(copy, name="copy", x=inputs, batch_size=size),
    )


def _two_d(read: _Read, *, what: str) -> torch.Tensor:
    name, tensor, _ = read
    if tensor.dim() != 2 or not tensor.is_floating_point():
        raise DataError(MSG_OUTPUT_SHAPE.format(name=name, what=what, shape=tuple(tensor.shape)))
    return tensor


def _labels(read: _Read) -> torch.Tensor:
    tensor = read[1]
    if tensor.dim() == 1 and not tensor.is_floating_point():
        return as_label_tensor(tensor)
    return _two_d(read, what="labels of shape (n,) or scores of shape (n, c)").argmax(dim=1)


def _probabilities(read: _Read) -> torch.Tensor:
    name, _, from_model = read
    tensor = _two_d(read, what="probabilities of shape (n, n_classes)")
    if from_model:
        return F.softmax(tensor, dim=1)
    valid = ((tensor >= 0) & (tensor <= 1)).all(dim=1) & (
        (tensor.sum(dim=1) - 1).abs() <= SUM_TOLERANCE
    )
    if not bool(valid.all()):
        index = int(torch.argmin(valid.to(torch.uint8)))
        raise DataError(MSG_NOT_PROBABILITIES.format(name=name, index=index))
    return tensor


def _check_pair(first: _Read, a: torch.Tensor, second: _Read, b: torch.Tensor) -> None:
    check_same_length(first=first[0], n_first=a.shape[0], second=second[0], n_second=b.shape[0])
    if a.dim() == 2 and b.dim() == 2 and a.shape[1] != b.shape[1]:
        raise DataError(
            MSG_CLASSES.format(
                first=first[0], second=second[0], n_first=a.shape[1], n_second=b.shape[1]
            )
        )


def label_agreement(
    *,
    y_true: ArrayLike | None = None,
    y_pred: ArrayLike | None = None,
    victim: nn.Module | ArrayLike | None = None,
    copy: nn.Module | ArrayLike | None = None,
    x: ArrayLike | None = None,
    batch_size: int | None = None,
) -> float:
    """Share of inputs on which the copy predicts the victim's label.

    Parameters
    ----------
    y_true : array-like
        The victim's outputs: integer labels (n,) or scores (n, n_classes).
    y_pred : array-like
        The copy's outputs on the same inputs, in either form.

    Other Parameters
    ----------------
    victim, copy, x, batch_size
        Deprecated in 0.2, removed in 0.4: models (run on ``x``) or outputs instead of
        ``y_true`` and ``y_pred``. They raise a :class:`FutureWarning`.

    Returns
    -------
    float
        In [0, 1]; 1 means the copy agrees everywhere.

    Raises
    ------
    DataError
        If the arrays have different lengths, the wrong shape or non-finite values.

    Examples
    --------
    >>> import torch
    >>> label_agreement(y_true=torch.tensor([0, 1, 2, 1]), y_pred=torch.tensor([0, 1, 1, 1]))
    0.75
    """
    first, second = _compared(
        "label_agreement",
        ("y_true", "y_pred"),
        y_true,
        y_pred,
        victim=victim,
        copy=copy,
        x=x,
        batch_size=batch_size,
    )
    a, b = _labels(first), _labels(second)
    _check_pair(first, a, second, b)
    return float((a == b).to(torch.float64).mean())


def _probability_pair(first: _Read, second: _Read) -> tuple[torch.Tensor, torch.Tensor]:
    p, q = _probabilities(first), _probabilities(second)
    _check_pair(first, p, second, q)
    return p, q


def kl_divergence(
    *,
    reference: ArrayLike | None = None,
    candidate: ArrayLike | None = None,
    victim: nn.Module | ArrayLike | None = None,
    copy: nn.Module | ArrayLike | None = None,
    x: ArrayLike | None = None,
    batch_size: int | None = None,
) -> float:
    """Mean KL divergence ``KL(reference || candidate)`` between probability vectors, in nats.

    ``KL(p || q) = sum_k p_k log(p_k / q_k)`` with ``0 log 0 = 0``; ``q`` is clipped below at
    1e-12 so that a copy giving zero probability to a class the victim uses yields a large
    but finite value.

    Parameters
    ----------
    reference : array-like of shape (n, n_classes)
        The victim's probabilities.
    candidate : array-like of shape (n, n_classes)
        The copy's probabilities on the same inputs.

    Other Parameters
    ----------------
    victim, copy, x, batch_size
        Deprecated in 0.2, removed in 0.4: models (whose logits go through a softmax) or
        probabilities instead of ``reference`` and ``candidate``.

    Returns
    -------
    float
        >= 0; 0 when the copy's probabilities equal the victim's.

    Raises
    ------
    DataError
        If a row is not a probability vector, or the shapes differ.

    Examples
    --------
    >>> import torch
    >>> p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.25, 0.75]])
    >>> round(kl_divergence(reference=p, candidate=q), 4)  # 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
    0.1438
    """
    p, q = _probability_pair(
        *_compared(
            "kl_divergence",
            ("reference", "candidate"),
            reference,
            candidate,
            victim=victim,
            copy=copy,
            x=x,
            batch_size=batch_size,
        )
    )
    terms = torch.where(
        p > 0,
        p * (torch.log(p.clamp_min(KL_FLOOR)) - torch.log(q.clamp_min(KL_FLOOR))),
        torch.zeros_like(p),
    )
    return float(terms.sum(dim=1).mean().clamp_min(0.0))


def l1_distance(
    *,
    reference: ArrayLike | None = None,
    candidate: ArrayLike | None = None,
    victim: nn.Module | ArrayLike | None = None,
    copy: nn.Module | ArrayLike | None = None,
    x: ArrayLike | None = None,
    batch_size: int | None = None,
) -> float:
    """Mean L1 distance ``sum_k |p_k - q_k|`` between the probability vectors.

    Parameters
    ----------
    reference : array-like of shape (n, n_classes)
        The victim's probabilities.
    candidate : array-like of shape (n, n_classes)
        The copy's probabilities on the same inputs.

    Other Parameters
    ----------------
    victim, copy, x, batch_size
        Deprecated in 0.2, removed in 0.4, as for :func:`kl_divergence`.

    Returns
    -------
    float
        In [0, 2].

    Examples
    --------
    >>> import torch
    >>> l1_distance(reference=torch.tensor([[0.5, 0.5]]), candidate=torch.tensor([[0.25, 0.75]]))
    0.5
    """
    p, q = _probability_pair(
        *_compared(
            "l1_distance",
            ("reference", "candidate"),
            reference,
            candidate,
            victim=victim,
            copy=copy,
            x=x,
            batch_size=batch_size,
        )
    )
    return float((p - q).abs().sum(dim=1).mean())


def embedding_l2(
    *,
    reference: ArrayLike | None = None,
    candidate: ArrayLike | None = None,
    victim: nn.Module | ArrayLike | None = None,
    copy: nn.Module | ArrayLike | None = None,
    x: ArrayLike | None = None,
    batch_size: int | None = None,
) -> float:
    """Mean per-example L2 distance between the victim's and the copy's embeddings.

    Parameters
    ----------
    reference : array-like of shape (n, d)
        The victim's embeddings.
    candidate : array-like of shape (n, d)
        The copy's embeddings of the same inputs.

    Other Parameters
    ----------------
    victim, copy, x, batch_size
        Deprecated in 0.2, removed in 0.4: encoders (run on ``x``) or embeddings instead of
        ``reference`` and ``candidate``.

    Returns
    -------
    float
        >= 0; 0 when the embeddings are equal.

    Examples
    --------
    >>> import torch
    >>> embedding_l2(reference=torch.tensor([[0.0, 0.0], [1.0, 1.0]]),
    ...              candidate=torch.tensor([[3.0, 4.0], [1.0, 1.0]]))
    2.5
    """
    first, second = _compared(
        "embedding_l2",
        ("reference", "candidate"),
        reference,
        candidate,
        victim=victim,
        copy=copy,
        x=x,
        batch_size=batch_size,
    )
    what = "embeddings of shape (n, d)"
    a, b = _two_d(first, what=what), _two_d(second, what=what)
    _check_pair(first, a, second, b)
    return float(torch.linalg.vector_norm(a - b, dim=1).mean())


def transfer_rate(
    *,
    y_true: ArrayLike | None = None,
    y_pred: ArrayLike | None = None,
    y_pred_copy: ArrayLike | None = None,
    victim: nn.Module | ArrayLike | None = None,
    x_adv: ArrayLike | None = None,
    y: ArrayLike | None = None,
    copy: nn.Module | ArrayLike | None = None,
    batch_size: int | None = None,
) -> float:
    """Share of adversarial examples crafted on the copy that also fool the victim.

    An example fools a model when the model's label differs from the true label (untargeted).
    Craft the adversarial examples against the copy with any evasion attack (for example from
    ``trustlab.robustness``) and run the victim (and the copy) on them. With ``y_pred_copy``
    given, only the examples that fool the copy are counted, as in Papernot et al. (2017);
    without it, all of them are.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        The true labels of the adversarial examples.
    y_pred : array-like
        The victim's outputs on them: labels (n,) or scores (n, n_classes).
    y_pred_copy : array-like, optional
        The copy's outputs on them, in either form.

    Other Parameters
    ----------------
    victim, x_adv, y, copy, batch_size
        Deprecated in 0.2, removed in 0.4: the victim and the copy as models (run on
        ``x_adv``) or outputs, and the true labels as ``y``.

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    DataError
        If shapes disagree, values are not finite, or ``y_pred_copy`` is given and no example
        fools the copy.

    Examples
    --------
    >>> import torch
    >>> transfer_rate(y_true=torch.tensor([0, 0, 0, 0]), y_pred=torch.tensor([1, 0, 2, 0]))
    0.5
    """
    owner = "transfer_rate"
    new = ("y_true", "y_pred", "y_pred_copy")
    old = ("victim", "x_adv", "y", "copy")
    if victim is None and x_adv is None and y is None and copy is None and batch_size is None:
        if y_true is None or y_pred is None:
            raise _missing(owner, y_true=y_true, y_pred=y_pred)
        truth = ("y_true", as_label_tensor(y_true))
        victim_read = _array(y_pred, name="y_pred")
        copy_read = None if y_pred_copy is None else _array(y_pred_copy, name="y_pred_copy")
        return _transfer(truth, victim_read, copy_read)
    if y_true is not None or y_pred is not None or y_pred_copy is not None:
        raise TypeError(MSG_MIXED.format(owner=owner, new=_names(new), old=_names(old)))
    size = _deprecated(owner, old=old, new=new, batch_size=batch_size, depth=2)
    if victim is None or x_adv is None or y is None:
        raise _missing(owner, victim=victim, x_adv=x_adv, y=y)
    inputs = as_input_tensor(x_adv)
    labels = as_label_tensor(y)
    check_same_length(first="x_adv", n_first=inputs.shape[0], second="y", n_second=len(labels))
    victim_read = _legacy(victim, name="victim", x=inputs, batch_size=size)
    copy_read = None if copy is None else _legacy(copy, name="copy", x=inputs, batch_size=size)
    return _transfer(("y", labels), victim_read, copy_read)


def _transfer(truth: tuple[str, torch.Tensor], victim: _Read, copy: _Read | None) -> float:
    label_name, labels = truth
    victim_labels = _labels(victim)
    check_same_length(
        first=victim[0], n_first=len(victim_labels), second=label_name, n_second=len(labels)
    )
    counted = torch.ones(len(labels), dtype=torch.bool)
    if copy is not None:
        copy_labels = _labels(copy)
        check_same_length(
            first=copy[0], n_first=len(copy_labels), second=label_name, n_second=len(labels)
        )
        counted = copy_labels != labels
        if not bool(counted.any()):
            raise DataError(MSG_NONE_FOOL_COPY.format(n=len(labels)))
    fooled = (victim_labels != labels) & counted
    return float(fooled.sum()) / float(counted.sum())
