"""The base class of evasion attacks: a template method around one batch's step.

An attack gets a classifier that returns logits, inputs ``x`` of shape (n, ...) in a valid range
(``bounds``, ``(0, 1)`` by default), their labels ``y``, and returns an
:class:`~trustlab.robustness.result.AttackResult`: the adversarial examples, re-checked by the
base class (finite, inside the valid range, inside the epsilon ball of the attack's norm) and
re-evaluated with one more forward pass, so the reported accuracy is always recomputed from the
returned examples.

Reproducibility does not depend on batch size or order: all randomness an attack draws is
keyed by ``(seed, example index, step)`` through
:class:`~trustlab.robustness._random.ExampleRandom`. Forward and backward passes are counted
per example (a batch of 64 counts 64) by :class:`~trustlab.robustness._counting.CountingModel`,
the wrapper every attack's model calls go through.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from trustlab.core.checks import (
    as_label_tensor,
    check_batch_size,
    check_labels_in_range,
    check_same_length,
    compute_logits,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError, TrustlabError
from trustlab.core.progress import ProgressCallback, ProgressEvent, report, resolve_progress
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._inputs import check_in_bounds, inputs_and_labels
from trustlab.robustness._params import ThreatModelParams
from trustlab.robustness.norms import Norm, flat, per_example_norm
from trustlab.robustness.result import AttackResult

ProgressFn = ProgressCallback
"""Receives a :class:`~trustlab.core.progress.ProgressEvent` after each batch."""

MSG_TARGETS_NEEDED = (
    "{owner} is targeted and needs 'targets', one class index per example; pass targets=..."
)
MSG_TARGETS_UNUSED = (
    "{owner} is untargeted; it does not take 'targets'. Use a targeted attack instead."
)
MSG_NEGATIVE_INDEX = (
    "indices must hold example positions >= 0 (they key each example's random draws); got {value}."
)
MSG_CONTRACT = (
    "{owner} returned an invalid adversarial example {index}: {problem}. This is a bug in the "
    "attack; please report it with the attack's parameters."
)

# Numerical slack for the re-check of the epsilon ball and of the valid range.
BALL_TOLERANCE = 1e-5


class Attack(ThreatModelParams, abc.ABC):
    """Base class of evasion attacks on classifiers that return logits.

    Subclasses set the class attributes, declare their own hyperparameters in
    ``_parameter_constraints`` (``norm``, ``eps``, ``bounds`` and ``seed`` are declared here),
    store them in a keyword-only ``__init__`` that ends with
    :func:`~trustlab.core.params.validate_params`, and implement :meth:`_perturb` on one batch.
    :meth:`generate` does the rest: input checks, eval mode, batching, the clean pass, the
    re-check of every returned example, and the recomputed accuracy.

    Class attributes
    ----------------
    name : str
        The attack's registry name.
    norms : tuple of Norm
        The threat models it supports (the ``norm`` parameter accepts these).
    targeted : bool
        Whether it needs ``targets`` (attacks that pick their own targets, like APGD-T, set
        ``targeted = False`` and report the targets they chose).
    """

    name: ClassVar[str]
    targeted: ClassVar[bool] = False

    norm: Norm
    eps: float | None
    bounds: tuple[float, float]
    seed: int

    def generate(
        self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        targets: ArrayLike | None = None,
        batch_size: int = 256,
        progress: ProgressFn | None = None,
        indices: ArrayLike | None = None,
    ) -> AttackResult:
        """Attack every example of ``x`` and return the re-checked result.

        Parameters
        ----------
        model : torch.nn.Module
            A classifier mapping (batch, ...) to logits (batch, n_classes). It is run in eval
            mode; the mode of every submodule is restored afterwards.
        x : torch.Tensor or ndarray, shape (n, ...)
            Clean inputs inside ``bounds``.
        y : torch.Tensor or ndarray of int, shape (n,)
            True labels.
        targets : torch.Tensor or ndarray of int, shape (n,), optional
            Target classes, for targeted attacks only.
        batch_size : int, default=256
            Examples attacked together. Results do not depend on it.
        progress : callable, optional
            Receives a :class:`~trustlab.core.progress.ProgressEvent` after each batch (stage
            ``"examples"``, the examples attacked so far, their number). The old
            ``progress(done, total)`` shape still works, with a FutureWarning.
        indices : torch.Tensor or ndarray of int, shape (n,), optional
            The examples' identities that key their random draws (default: their positions
            ``0 .. n-1``). An evaluation that attacks a subset of a larger set passes the
            subset's positions in the larger set, so every example draws the same random
            numbers whichever subset or batch it is attacked in.
        """
        owner = type(self).__name__
        batch_size = check_batch_size(batch_size, owner=owner)
        x_t, y_t = inputs_and_labels(x, y)
        t_t: torch.Tensor | None = None
        if self.targeted:
            if targets is None:
                raise ConfigurationError(MSG_TARGETS_NEEDED.format(owner=owner))
            t_t = as_label_tensor(targets)
            check_same_length(
                first="x", n_first=x_t.shape[0], second="targets", n_second=t_t.shape[0]
            )
        elif targets is not None:
            raise ConfigurationError(MSG_TARGETS_UNUSED.format(owner=owner))
        check_in_bounds(x_t, self.bounds)
        keys = _example_keys(indices, n=int(x_t.shape[0]))
        callback = resolve_progress(progress, owner=owner, legacy=_legacy_done_total, arity=2)

        # The attack runs on the model's device; the result goes back to the input's.
        device, dtype = model_device_and_dtype(model)
        home = x_t.device
        x_t = x_t.to(dtype)
        counted = CountingModel(model)
        with model_mode(model, training=False):
            clean_logits = compute_logits(model=model, x=x_t, batch_size=batch_size)
            n_classes = int(clean_logits.shape[1])
            check_labels_in_range(y_t, n_classes=n_classes)
            if t_t is not None:
                check_labels_in_range(t_t, n_classes=n_classes)
            clean_correct = clean_logits.argmax(dim=1) == y_t
            pieces: list[torch.Tensor] = []
            chosen: list[torch.Tensor] = []
            n = x_t.shape[0]
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                batch_keys = keys[start:stop].to(device)
                xb = x_t[start:stop].to(device)
                yb = y_t[start:stop].to(device)
                tb = None if t_t is None else t_t[start:stop].to(device)
                with torch.enable_grad():
                    out = self._perturb(
                        model=counted,
                        x=xb,
                        y=yb,
                        targets=tb,
                        indices=batch_keys,
                        clean_correct=clean_correct[start:stop].to(device),
                    )
                if isinstance(out, tuple):
                    adv, picked = out
                    chosen.append(picked.detach().to(home))
                else:
                    adv = out
                pieces.append(adv.detach().to(home, dtype))
                report(callback, stage="examples", done=stop, total=n)
            x_adv = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
            self._check_contract(x_t, x_adv)
            adv_logits = compute_logits(model=model, x=x_adv, batch_size=batch_size)
        adv_pred = adv_logits.argmax(dim=1)
        adv_correct = adv_pred == y_t
        reported_targets = t_t if t_t is not None else (torch.cat(chosen) if chosen else None)
        success = adv_pred == t_t if self.targeted and t_t is not None else ~adv_correct
        return AttackResult(
            x_adv=x_adv,
            y=y_t.to(home),
            targets=None if reported_targets is None else reported_targets.to(home),
            clean_correct=clean_correct.to(home),
            adv_correct=adv_correct.to(home),
            success=success.to(home),
            perturbation=per_example_norm(x_adv - x_t, self.norm),
            forwards=counted.forwards,
            backwards=counted.backwards,
            norm=self.norm,
            eps=self.eps,
        )

    @abc.abstractmethod
    def _perturb(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attack one batch; return adversarial examples (and, optionally, chosen targets).

        ``indices`` are the examples' positions in the whole input (key randomness with
        :class:`ExampleRandom`); ``clean_correct`` says which are classified correctly
        before the attack (an evaluation may leave the others alone). Gradients are enabled.
        """

    def _check_contract(self, x: torch.Tensor, x_adv: torch.Tensor) -> None:
        owner = type(self).__name__
        if x_adv.shape != x.shape:
            raise AttackContractError(
                MSG_CONTRACT.format(
                    owner=owner,
                    index=0,
                    problem=f"shape {tuple(x_adv.shape)} differs from {tuple(x.shape)}",
                )
            )
        finite = torch.isfinite(flat(x_adv)).all(dim=1)
        if not bool(finite.all()):
            index = int(torch.argmin(finite.to(torch.uint8)))
            raise AttackContractError(
                MSG_CONTRACT.format(owner=owner, index=index, problem="it holds NaN or inf")
            )
        low, high = self.bounds
        scale = max(1.0, abs(low), abs(high))
        outside = (flat(x_adv).amin(dim=1) < low - BALL_TOLERANCE * scale) | (
            flat(x_adv).amax(dim=1) > high + BALL_TOLERANCE * scale
        )
        if bool(outside.any()):
            index = int(torch.argmax(outside.to(torch.uint8)))
            raise AttackContractError(
                MSG_CONTRACT.format(
                    owner=owner, index=index, problem=f"it leaves the valid range {self.bounds}"
                )
            )
        if self.eps is not None:
            size = per_example_norm(x_adv - x, self.norm)
            over = size > self.eps * (1 + BALL_TOLERANCE) + BALL_TOLERANCE
            if bool(over.any()):
                index = int(torch.argmax(over.to(torch.uint8)))
                raise AttackContractError(
                    MSG_CONTRACT.format(
                        owner=owner,
                        index=index,
                        problem=(
                            f"its {self.norm.value} perturbation {float(size[index]):.6g} "
                            f"exceeds eps={self.eps:.6g}"
                        ),
                    )
                )


def _example_keys(indices: ArrayLike | None, *, n: int) -> torch.Tensor:
    """The keys of the examples' random draws: ``indices`` checked, or ``0 .. n-1``."""
    if indices is None:
        return torch.arange(n)
    keys = as_label_tensor(indices)
    check_same_length(first="x", n_first=n, second="indices", n_second=int(keys.shape[0]))
    if bool((keys < 0).any()):
        raise DataError(MSG_NEGATIVE_INDEX.format(value=int(keys.min())))
    return keys


class AttackContractError(TrustlabError, RuntimeError):
    """An attack returned an example outside its threat model: a bug in the attack."""

    status_code = 500


def _legacy_done_total(callback: Callable[..., object], event: ProgressEvent) -> None:
    """Call an old-style ``progress(done, total)`` callback."""
    callback(event.done, event.total)
