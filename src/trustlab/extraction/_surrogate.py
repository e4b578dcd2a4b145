"""Training a surrogate on an oracle's answers, and measuring it, for every extraction attack.

The surrogate is trained by :func:`trustlab.core.training.train` with one of three losses,
chosen by what the oracle answers: cross-entropy on labels, soft cross-entropy on
probabilities, and a regression loss on embeddings.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import compute_logits
from trustlab.core.errors import DataError
from trustlab.core.progress import ProgressCallback
from trustlab.core.training import Step, TrainingHistory, train

__all__ = [
    "EMBEDDING_LOSSES",
    "MSG_ANSWER_SHAPE",
    "MSG_SURROGATE_OUTPUT",
    "TARGETS",
    "fidelity",
    "fit_surrogate",
    "surrogate_outputs",
]

#: What a surrogate is trained to reproduce.
TARGETS = ("labels", "probabilities", "embeddings")
#: Regression losses for encoders.
EMBEDDING_LOSSES = ("mse", "cosine")
#: Rows per forward pass when the surrogate runs on a pool or an evaluation set.
OUTPUT_BATCH = 512

MSG_ANSWER_SHAPE = (
    "The oracle answered {n} queries with shape {shape}; expected labels (n,), probabilities "
    "(n, n_classes) or embeddings (n, d)."
)
MSG_SURROGATE_OUTPUT = (
    "The surrogate returned shape {shape} for {n} inputs, but the oracle's answers need "
    "(n, {width}); build the surrogate with {width} outputs."
)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def soft_targets(answers: torch.Tensor) -> torch.Tensor:
    """Rows of (possibly truncated or rounded) probabilities, renormalised to sum to one."""
    values = answers.to(torch.float32).clamp_min(0.0)
    total = values.sum(dim=1, keepdim=True)
    uniform = torch.full_like(values, 1.0 / values.shape[1])
    return torch.where(total > 0, values / total.clamp_min(1e-12), uniform)


def _targets(answers: torch.Tensor, target: str) -> torch.Tensor:
    if target == "labels":
        return answers.long() if answers.dim() == 1 else answers.argmax(dim=1)
    if target == "probabilities":
        return soft_targets(answers)
    return answers.to(torch.float32)


def _loss(
    outputs: torch.Tensor, targets: torch.Tensor, *, target: str, embedding_loss: str
) -> torch.Tensor:
    if target == "labels":
        return F.cross_entropy(outputs, targets)
    if target == "probabilities":
        return -(targets * F.log_softmax(outputs, dim=1)).sum(dim=1).mean()
    if embedding_loss == "cosine":
        return (1.0 - F.cosine_similarity(outputs, targets, dim=1)).mean()
    return F.mse_loss(outputs, targets)


def fit_surrogate(
    model: nn.Module,
    x: torch.Tensor,
    answers: torch.Tensor,
    *,
    target: str,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    embedding_loss: str,
    owner: str,
    progress: ProgressCallback | None = None,
) -> TrainingHistory:
    """Train ``model`` in place on the transfer set ``(x, answers)`` with Adam.

    Labels are fitted with cross-entropy; probabilities with the soft cross-entropy
    ``-sum_k y_k log softmax(s(x))_k`` on the answers renormalised to sum to one; embeddings
    with the mean squared error or ``1 - cosine similarity`` (``embedding_loss``).

    Raises
    ------
    DataError
        If the surrogate's outputs do not have one column per column of the answers.
    ConfigurationError
        If the loss becomes NaN or infinite (the learning rate is too high).
    """
    width = None if target == "labels" and answers.dim() == 1 else int(answers.shape[1])

    def loss(step: Step) -> torch.Tensor:
        outputs = step.model(step.batch["x"])
        wrong = width is not None and (outputs.dim() != 2 or outputs.shape[1] != width)
        if step.number == 0 and wrong:
            raise DataError(
                MSG_SURROGATE_OUTPUT.format(
                    shape=tuple(outputs.shape), n=outputs.shape[0], width=width
                )
            )
        return _loss(outputs, step.batch["y"], target=target, embedding_loss=embedding_loss)

    return train(
        model,
        data={"x": _as_float(x), "y": _targets(answers, target)},
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        lr=lr,
        optimizer="adam",
        loss=loss,
        owner=owner,
        progress=progress,
    )


def surrogate_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The surrogate's raw float32 outputs on ``x`` (eval mode, no gradients, on the CPU)."""
    return compute_logits(model=model, x=_as_float(x), batch_size=OUTPUT_BATCH).to(torch.float32)


def fidelity(model: nn.Module, x: torch.Tensor, reference: torch.Tensor, *, target: str) -> float:
    """Label agreement with ``reference`` (labels or scores), or for encoders the mean cosine
    similarity of the embeddings."""
    outputs = surrogate_outputs(model, x)
    if target == "embeddings":
        if reference.dim() != 2 or reference.shape[1] != outputs.shape[1]:
            raise DataError(MSG_ANSWER_SHAPE.format(n=x.shape[0], shape=tuple(reference.shape)))
        return float(F.cosine_similarity(outputs, reference.to(torch.float32), dim=1).mean())
    labels = reference if reference.dim() == 1 else reference.argmax(dim=1)
    return float((outputs.argmax(dim=1) == labels.long()).to(torch.float64).mean())
