"""The label-only membership attack of Choquette-Choo et al. (2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor, check_same_length, compute_logits
from trustlab.core.params import (
    Constraint,
    Integer,
    Optional,
    Real,
    Satisfies,
    Seed,
    validate_params,
)
from trustlab.core.seeding import make_generator
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy._scores import query_logits
from trustlab.privacy.augment import augmentation_names, augmented_queries
from trustlab.privacy.base import MEMBERSHIP_ATTACKS, MembershipInferenceAttack

__all__ = ["LabelOnlyAttack"]


@MEMBERSHIP_ATTACKS.register("label_only")
class LabelOnlyAttack(MembershipInferenceAttack):
    """Label-only membership inference by robustness to perturbation (Choquette-Choo et al., 2021).

    A model is more robust around its training points: their predicted label survives
    augmentations and noise more often. The attack queries the target on the candidate and on
    perturbed copies of it and scores the fraction of queries whose predicted label is the
    true one:

        score(x, y) = mean_q 1[argmax model(x_q) = y],   x_0 = x.

    The copies are the named augmentations (flips, shifts: the paper's data-augmentation
    attack, for images) or, without augmentations, ``n_queries`` draws of Gaussian noise of
    standard deviation ``noise`` (the paper's noise-robustness attack, for any data). With
    ``noise=0`` and no augmentations it is the gap attack (correct = member).

    Threat model: label-only; the attacker sees only the predicted label of each query (no
    scores) and knows the candidates' true labels.

    Shapes: ``x`` (n_examples, ...); ``logits`` (n_examples, n_classes) or (n_queries,
    n_examples, n_classes), of which only the arg-max is used; scores (n_examples,), in [0, 1].

    Differences from the paper: the paper feeds the per-query correctness vector to a learned
    threshold or classifier; this is the unweighted fraction, which needs no shadow model.

    Parameters
    ----------
    augmentations : list of str or None, default None
        Names from :data:`~trustlab.privacy.augment.AUGMENTATIONS` for image data.
    noise : float, default 0.1
        Standard deviation of the Gaussian noise (in the inputs' units) when there are no
        augmentations, >= 0.
    n_queries : int, default 20
        Noisy copies per candidate, >= 1.
    seed : int, default 0
        Seed of the noise.
    batch_size : int, default 512
        Examples per forward pass.

    References
    ----------
    .. [1] C. A. Choquette-Choo, F. Tramèr, N. Carlini and N. Papernot, "Label-Only
       Membership Inference Attacks", ICML 2021.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Linear(4, 3)
    >>> x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    >>> scores = LabelOnlyAttack(noise=0.5).infer(model=model, x=x, y=y)
    >>> bool(((scores >= 0) & (scores <= 1)).all())
    True
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "augmentations": Optional(
            Satisfies(augmentation_names, "a list of registered augmentation names")
        ),
        "noise": Real(low=0),
        "n_queries": Integer(low=1),
        "seed": Seed,
    }

    augmentations: tuple[str, ...] | None
    noise: float
    n_queries: int
    seed: int

    def __init__(
        self,
        *,
        augmentations: Sequence[str] | None = None,
        noise: float = 0.1,
        n_queries: int = 20,
        seed: int = 0,
        batch_size: int = 512,
    ) -> None:
        self.augmentations = augmentations  # type: ignore[assignment]
        self.noise = noise
        self.n_queries = n_queries
        self.seed = seed
        self.batch_size = batch_size
        validate_params(self)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """The candidate and its perturbed copies, shape (n_queries, n_examples, ...)."""
        if self.augmentations or self.noise == 0:
            return augmented_queries(x, self.augmentations)
        clean = x.to(torch.float32) if not x.is_floating_point() else x
        draws = torch.randn(
            (self.n_queries, *clean.shape), generator=make_generator(self.seed), dtype=clean.dtype
        )
        return torch.cat([clean.unsqueeze(0), clean.unsqueeze(0) + self.noise * draws])

    def infer(self, *, model: nn.Module, x: ArrayLike, y: ArrayLike) -> FloatArray:
        """Score every candidate by the fraction of its queries labelled correctly.

        Parameters and returns as :meth:`MembershipInferenceAttack.infer`; scores are in [0, 1].
        """
        inputs = as_input_tensor(x)
        labels = as_label_tensor(y)
        check_same_length(first="x", n_first=inputs.shape[0], second="y", n_second=len(labels))
        logits = torch.stack(
            [
                compute_logits(model=model, x=query, batch_size=self.batch_size)
                for query in self.queries(inputs)
            ]
        )
        return self.infer_from_logits(logits=logits, y=labels)

    def infer_from_logits(self, *, logits: ArrayLike, y: ArrayLike) -> FloatArray:
        """The fraction of queries whose arg-max is the true label, from their logits."""
        tensor, labels = query_logits(logits, y)
        correct = tensor.argmax(dim=-1) == labels.unsqueeze(0)
        scores: FloatArray = correct.double().mean(dim=0).numpy().astype(np.float64)
        return scores
