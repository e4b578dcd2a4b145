"""The shared shape of attacks that compare the target with reference models."""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor, check_same_length, compute_logits
from trustlab.core.params import Constraint, InstanceOf
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.privacy.base import MembershipInferenceAttack
from trustlab.privacy.reference import ReferenceModels


class ReferenceAttack(MembershipInferenceAttack):
    """A membership attack that scores the target's outputs against reference models'.

    :meth:`infer` checks the data, runs the target and every reference model once on each
    query of the candidates (:meth:`queries`; the candidates themselves unless the attack
    augments them) and hands all logits to :meth:`infer_from_logits`.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "reference": InstanceOf(ReferenceModels, "a ReferenceModels")
    }

    reference: ReferenceModels

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """The inputs each model is queried on, shape (n_queries, n_examples, ...)."""
        return x.unsqueeze(0)

    def infer(
        self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        candidate_index: ArrayLike | None = None,
    ) -> FloatArray:
        """Score every candidate; higher means more likely a member of ``model``'s training set.

        Parameters
        ----------
        model : torch.nn.Module
            The target; maps inputs of shape (batch, ...) to logits (batch, n_classes).
        x : torch.Tensor or ndarray, shape (n_examples, ...)
            Candidate inputs; must be finite.
        y : torch.Tensor or ndarray of int, shape (n_examples,)
            Their true class labels.
        candidate_index : array-like of int, shape (n_examples,), optional
            The candidates' positions in the reference population (the ``x`` given to
            :meth:`ReferenceModels.train`), so that the attack knows which reference models
            trained on each. Without it every candidate counts as OUT of every reference model.

        Returns
        -------
        ndarray of float64, shape (n_examples,)
        """
        inputs = as_input_tensor(x)
        labels = as_label_tensor(y)
        check_same_length(first="x", n_first=inputs.shape[0], second="y", n_second=len(labels))
        if inputs.is_floating_point():
            inputs = inputs.to(torch.float32)
        views = self.queries(inputs)
        logits = torch.stack(
            [compute_logits(model=model, x=view, batch_size=self.batch_size) for view in views]
        )
        reference_logits = torch.stack(
            [self.reference.logits(view, batch_size=self.batch_size) for view in views], dim=1
        )
        return self._infer_with(
            model=model,
            logits=logits,
            y=labels,
            reference_logits=reference_logits,
            candidate_index=candidate_index,
        )

    def _infer_with(
        self,
        *,
        model: nn.Module,
        logits: torch.Tensor,
        y: torch.Tensor,
        reference_logits: torch.Tensor,
        candidate_index: ArrayLike | None,
    ) -> FloatArray:
        return self.infer_from_logits(
            logits=logits, y=y, reference_logits=reference_logits, candidate_index=candidate_index
        )

    @abc.abstractmethod
    def infer_from_logits(
        self,
        *,
        logits: ArrayLike,
        y: ArrayLike,
        reference_logits: ArrayLike | None = None,
        candidate_index: ArrayLike | None = None,
    ) -> FloatArray:
        """Score candidates from the target's and the reference models' logits on them.

        Parameters
        ----------
        logits : array-like, shape (n_examples, n_classes) or (n_queries, n_examples, n_classes)
            The target's logits on each query of the candidates.
        y : array-like of int, shape (n_examples,)
            True labels.
        reference_logits : array-like, shape (n_models, [n_queries,] n_examples, n_classes)
            The reference models' logits on the same queries (``reference.logits(x)``).
        candidate_index : array-like of int, shape (n_examples,), optional
            As in :meth:`infer`.
        """
