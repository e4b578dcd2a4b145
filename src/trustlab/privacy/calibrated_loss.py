"""The difficulty-calibrated loss attack of Watson et al. (2022)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from trustlab.core.params import Constraint, validate_params
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy._reference_attack import ReferenceAttack
from trustlab.privacy._scores import (
    candidate_membership,
    log_probability,
    masked_mean,
    query_logits,
    reference_query_logits,
    require_models,
    required,
)
from trustlab.privacy.base import MEMBERSHIP_ATTACKS
from trustlab.privacy.reference import ReferenceModels

__all__ = ["CalibratedLossAttack"]


@MEMBERSHIP_ATTACKS.register("calibrated_loss")
class CalibratedLossAttack(ReferenceAttack):
    """Difficulty-calibrated LOSS attack (Watson et al., 2022).

    The LOSS attack (Yeom et al., 2018) flags examples with a low loss, but hard examples have
    a high loss whether or not they were trained on, and easy ones a low loss. Watson et al.
    subtract each example's expected difficulty, the loss that models trained *without* it
    give it:

        score(x, y) = mean_{OUT reference models} CE(ref(x), y) - CE(target(x), y)

    Higher means the target fits the example better than models that never saw it: more
    likely a member. The reference models that trained on a candidate (known through
    ``candidate_index``) are left out of its mean; without it all reference models count.

    Threat model: black-box access to the target's logits, the candidates' labels, and data to
    train reference models with the target's recipe (1 or more OUT models per candidate).

    Shapes: ``logits`` (n_examples, n_classes); ``reference_logits`` (n_models, n_examples,
    n_classes); scores (n_examples,).

    Differences from the paper: the calibration uses the mean loss of the reference models
    (the paper's "calibrated loss" with shadow models), not a per-example threshold.

    Parameters
    ----------
    reference : ReferenceModels
        Reference models trained with the target's recipe.
    batch_size : int, default 512
        Examples per forward pass.

    References
    ----------
    .. [1] L. Watson, C. Guo, G. Cormode and A. Sablayrolles, "On the Importance of Difficulty
       Calibration in Membership Inference Attacks", ICLR 2022.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 3)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> refs = ReferenceModels.train(architecture="mlp",
    ...     arguments={"in_features": 3, "hidden": [8]}, x=x, y=y, n_models=2, epochs=2)
    >>> CalibratedLossAttack(reference=refs).infer(model=refs.models[0], x=x, y=y).shape
    (40,)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}

    def __init__(self, *, reference: ReferenceModels, batch_size: int = 512) -> None:
        self.reference = reference
        self.batch_size = batch_size
        validate_params(self)

    def infer_from_logits(
        self,
        *,
        logits: ArrayLike,
        y: ArrayLike,
        reference_logits: ArrayLike | None = None,
        candidate_index: ArrayLike | None = None,
    ) -> FloatArray:
        """Calibrated scores: the OUT reference models' mean loss minus the target's loss."""
        target, labels = query_logits(logits, y)
        reference = reference_query_logits(
            required(reference_logits, owner="CalibratedLossAttack", what="reference_logits"),
            target,
        )
        out_mask = ~candidate_membership(
            candidate_index, membership=self.reference.membership, n_candidates=len(labels)
        )
        require_models(out_mask, which="OUT", owner="CalibratedLossAttack")
        reference_loss = -masked_mean(log_probability(reference, labels), out_mask)
        target_loss = -log_probability(target, labels)
        scores: FloatArray = (reference_loss - target_loss).mean(dim=0).numpy().astype(np.float64)
        return scores
