"""The base class of attribution methods: one template method, subclasses write one step.

:meth:`Explainer.attribute` checks the inputs, moves them to the model's device and dtype,
puts the model in eval mode (and restores it), picks the explained class (the model's
prediction unless ``target`` is given), runs the method batch by batch through Captum (inside a
seeded block for the methods that draw random numbers) and returns an
:class:`~trustlab.explain.attribution.Attribution` on the inputs' device. Subclasses declare
their parameters in ``_parameter_constraints`` and write :meth:`Explainer._attribute`: one call
of the Captum method on one batch.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_labels_in_range,
    check_same_length,
    model_device_and_dtype,
    run_model,
)
from trustlab.core.params import (
    Constraint,
    Integer,
    Optional,
    parameter_constraints,
    validate_params,
)
from trustlab.core.seeding import seeded
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.explain.attribution import Attribution

__all__ = ["Explainer", "TargetLike"]

TargetLike = int | ArrayLike | None


@contextmanager
def _seeded_draws(seed: int, *, device: torch.device) -> Iterator[None]:
    """Seed torch (CPU and ``device``) and NumPy's global generator, which Captum's GradientSHAP
    draws from, for the block; the caller's states are restored afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with seeded(seed, device=device):
            yield
    finally:
        np.random.set_state(state)


class Explainer(abc.ABC):
    """An attribution method. Build it with its parameters, then call :meth:`attribute`.

    Class attributes
    ----------------
    name : str
        The registered name (``"integrated_gradients"``).
    uses_randomness : bool
        Whether the method draws random numbers; it then has a ``seed`` parameter and runs in
        :func:`trustlab.core.seeding.seeded`, with NumPy's global generator seeded too (results do
        not depend on the caller's state, which is restored).
    uses_gradients : bool
        Whether the method differentiates the model (its inputs then require gradients).
    """

    name: ClassVar[str]
    uses_randomness: ClassVar[bool] = False
    uses_gradients: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "batch_size": Optional(Integer(low=1)),
    }

    batch_size: int | None

    def get_params(self) -> dict[str, Any]:
        """The method's parameters by name (what :attr:`Attribution.options` records)."""
        return {name: getattr(self, name) for name in parameter_constraints(type(self))}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    def _validate(self) -> None:
        validate_params(self)

    def attribute(
        self, *, model: nn.Module, x: ArrayLike, target: TargetLike = None
    ) -> Attribution:
        """Attribute the model's output for ``target`` to every feature of ``x``.

        Parameters
        ----------
        model : torch.nn.Module
            A classifier returning logits of shape ``(n, n_classes)``.
        x : torch.Tensor or numpy.ndarray, shape (n, ...)
            Inputs as the model takes them; moved to the model's device for the computation.
        target : int or array-like of int, shape (n,), optional
            The class to explain for each input; by default the model's prediction.

        Returns
        -------
        Attribution
            Values on the device of ``x`` (the CPU for a NumPy array).

        Raises
        ------
        DataError
            If ``x`` is empty or not finite, or ``target`` has the wrong length or a class the
            model has no logit for.
        """
        inputs = as_input_tensor(x)
        home = inputs.device
        device, dtype = model_device_and_dtype(model)
        data = inputs.to(device)
        data = data.to(dtype) if data.is_floating_point() else data.to(torch.get_default_dtype())
        seed: int | None = getattr(self, "seed", None) if self.uses_randomness else None
        context = _seeded_draws(seed, device=device) if seed is not None else nullcontext()
        with model_mode(model, training=False), context:
            labels = self._targets(model, data, target)
            step = self.batch_size or data.shape[0]
            chunks = [
                self._attribute_batch(
                    model, data[start : start + step], labels[start : start + step]
                )
                for start in range(0, data.shape[0], step)
            ]
        values = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        baselines = self._baselines(data)
        return Attribution(
            values=values.to(home),
            target=labels.to(home),
            method=self.name,
            options=self.get_params(),
            baselines=None if baselines is None else baselines.to(home),
        )

    def _attribute_batch(
        self, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """One batch; gradient methods run with gradients on, even under ``torch.no_grad``."""
        if not self.uses_gradients:
            return self._attribute(model=model, x=x, target=target).detach()
        with torch.enable_grad():
            leaf = x.detach().requires_grad_()
            return self._attribute(model=model, x=leaf, target=target).detach()

    def _targets(self, model: nn.Module, x: torch.Tensor, target: TargetLike) -> torch.Tensor:
        """The explained class of every input, as int64 on the model's device."""
        if target is None:
            with torch.no_grad():
                logits = run_model(model, x)
            assert isinstance(logits, torch.Tensor)
            return logits.argmax(dim=1)
        if isinstance(target, int) and not isinstance(target, bool):
            labels = torch.full((x.shape[0],), target, dtype=torch.int64)
        else:
            labels = as_label_tensor(target)
        check_same_length(first="x", n_first=x.shape[0], second="target", n_second=len(labels))
        with torch.no_grad():
            logits = run_model(model, x[:1])
        assert isinstance(logits, torch.Tensor)
        check_labels_in_range(labels, n_classes=int(logits.shape[1]))
        return labels.to(x.device)

    def _baselines(self, x: torch.Tensor) -> torch.Tensor | None:
        """The reference input the method compares against, for the record; None by default."""
        baseline = getattr(self, "baseline", None)
        if baseline is None:
            return None
        return torch.tensor(float(baseline), dtype=x.dtype)

    @abc.abstractmethod
    def _attribute(
        self, *, model: nn.Module, x: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """The Captum method on one batch (model in eval mode, everything on its device)."""
