"""The Likelihood Ratio Attack (LiRA) of Carlini et al. (2022)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch

from trustlab.core.params import Boolean, Constraint, Optional, Satisfies, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy._reference_attack import ReferenceAttack
from trustlab.privacy._scores import (
    candidate_membership,
    masked_mean,
    masked_std,
    query_logits,
    reference_query_logits,
    require_models,
    required,
    scaled_confidence,
)
from trustlab.privacy.augment import augmentation_names, augmented_queries
from trustlab.privacy.base import MEMBERSHIP_ATTACKS
from trustlab.privacy.reference import ReferenceModels

__all__ = ["LiRA"]

#: The smallest standard deviation a Gaussian of LiRA may have (one reference value, or ties).
MIN_STD = 1e-6


def _normal_log_pdf(value: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((value - mean) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)


@MEMBERSHIP_ATTACKS.register("lira")
class LiRA(ReferenceAttack):
    """Likelihood Ratio Attack (Carlini et al., 2022).

    For each candidate ``(x, y)`` LiRA fits Gaussians to the logit-scaled confidence
    ``phi = log(p_y) - log(1 - p_y)`` of the reference models that trained on it (IN) and of
    those that did not (OUT), and tests where the target's confidence falls:

    - online: ``score = log N(phi; mu_in, sigma_in) - log N(phi; mu_out, sigma_out)``, the
      log-likelihood ratio of "member" against "non-member";
    - offline (OUT models only): the one-sided test ``score = log Phi((phi - mu_out) /
      sigma_out)``, the log-probability that a non-member's confidence is below the target's.

    With augmentations the statistics are fitted per query (the candidate, then its augmented
    copies) and the score is averaged over the queries, as in the paper. ``phi`` is computed
    from the logits as ``z_y - logsumexp_{j != y} z_j``, exact even when ``p_y`` rounds to 1.

    Threat model: black-box access to the target's logits (or probabilities), the candidates'
    true labels, and data from the training distribution to train reference models with the
    target's recipe. Cost: the reference models (the paper uses 64-256; 16 already beat the
    LOSS attack by a wide margin) plus ``n_models + 1`` forward passes per query.

    Shapes: ``x`` (n_examples, ...); ``logits`` (n_examples, n_classes) or (n_queries,
    n_examples, n_classes); ``reference_logits`` (n_models, [n_queries,] n_examples,
    n_classes); scores (n_examples,).

    Differences from the paper: the Gaussians' means are the sample means (the released code
    uses medians); standard deviations are floored at ``MIN_STD`` so a candidate with one
    reference model (or tied confidences) still gets a finite score; the offline score is the
    paper's one-sided test in log space, while the released code ranks by the two-sided
    density. Online scoring needs ``candidate_index`` (the candidates' rows of the reference
    population) and at least one IN and one OUT model for every candidate; offline scoring uses
    the OUT models of each candidate (all models when ``candidate_index`` is None).

    Parameters
    ----------
    reference : ReferenceModels
        Reference models trained with the target's recipe.
    online : bool, default True
        Use IN and OUT models (online) or OUT models only (offline).
    fixed_variance : bool, default False
        One standard deviation per query, pooled over all candidates (the paper's "global"
        variance, better with fewer than about 64 models), instead of one per candidate.
    augmentations : list of str or None, default None
        Names from :data:`~trustlab.privacy.augment.AUGMENTATIONS` (``"hflip"``, ``"shift"``)
        for image data; None queries the candidates as they are (tabular data).
    batch_size : int, default 512
        Examples per forward pass.

    References
    ----------
    .. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis and F. Tramèr, "Membership
       Inference Attacks From First Principles", IEEE S&P 2022.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 3)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> refs = ReferenceModels.train(architecture="mlp",
    ...     arguments={"in_features": 3, "hidden": [8]}, x=x, y=y, n_models=4, epochs=2)
    >>> target = refs.models[0]
    >>> scores = LiRA(reference=refs).infer(
    ...     model=target, x=x, y=y, candidate_index=np.arange(40))
    >>> scores.shape
    (40,)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "online": Boolean(),
        "fixed_variance": Boolean(),
        "augmentations": Optional(
            Satisfies(augmentation_names, "a list of registered augmentation names")
        ),
    }

    online: bool
    fixed_variance: bool
    augmentations: tuple[str, ...] | None

    def __init__(
        self,
        *,
        reference: ReferenceModels,
        online: bool = True,
        fixed_variance: bool = False,
        augmentations: Sequence[str] | None = None,
        batch_size: int = 512,
    ) -> None:
        self.reference = reference
        self.online = online
        self.fixed_variance = fixed_variance
        self.augmentations = augmentations  # type: ignore[assignment]
        self.batch_size = batch_size
        validate_params(self)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """The candidates and their augmented copies, shape (n_queries, n_examples, ...)."""
        return augmented_queries(x, self.augmentations)

    def infer_from_logits(
        self,
        *,
        logits: ArrayLike,
        y: ArrayLike,
        reference_logits: ArrayLike | None = None,
        candidate_index: ArrayLike | None = None,
    ) -> FloatArray:
        """LiRA scores from the target's and the reference models' logits on the queries.

        See :meth:`ReferenceAttack.infer_from_logits` for the shapes; returns one finite
        score per candidate, float64, higher meaning more likely a member.
        """
        target, labels = query_logits(logits, y)
        reference = reference_query_logits(
            required(reference_logits, owner="LiRA", what="reference_logits"), target
        )
        observed = scaled_confidence(target, labels)  # (q, n)
        confidences = scaled_confidence(reference, labels)  # (k, q, n)
        member = candidate_membership(
            candidate_index, membership=self.reference.membership, n_candidates=len(labels)
        )
        out_mask = ~member
        require_models(out_mask, which="OUT", owner="LiRA")
        mean_out = masked_mean(confidences, out_mask)
        std_out = masked_std(confidences, out_mask, pooled=self.fixed_variance).clamp_min(MIN_STD)
        if self.online:
            require_models(member, which="IN", owner="online LiRA")
            mean_in = masked_mean(confidences, member)
            std_in = masked_std(confidences, member, pooled=self.fixed_variance).clamp_min(MIN_STD)
            per_query = _normal_log_pdf(observed, mean_in, std_in) - _normal_log_pdf(
                observed, mean_out, std_out
            )
        else:
            per_query = torch.special.log_ndtr((observed - mean_out) / std_out)
        scores: FloatArray = per_query.mean(dim=0).numpy().astype(np.float64)
        return scores
