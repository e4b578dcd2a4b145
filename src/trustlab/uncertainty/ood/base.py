"""The base class of out-of-distribution detectors, their registry and the model's outputs.

A detector gives every input an **outlier score: higher means more likely out of
distribution** (the convention of pytorch-ood). Each detector has

* ``fit(*, model, x, y=None)``, returning ``self``: learns what it needs from
  in-distribution data (class means, training features); a no-op for detectors that need
  nothing;
* ``score(*, model, x)``: the outlier scores of new inputs, a float64 array of shape (n,).

Expensive model outputs are computed once and reused: :func:`model_outputs` returns the logits
and the penultimate features in one pass, and ``fit_outputs`` / ``score_outputs`` take them
directly, so several detectors can share one forward pass (as pytorch-ood's
``predict_features``). Detectors that perturb the inputs (ODIN, Mahalanobis with ``eps > 0``)
need the model itself.

Features are the **input of the model's last** ``nn.Linear`` layer by default (the penultimate
representation), or the input of the submodule named by ``layer``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import (
    MSG_LOGITS_SHAPE,
    as_input_tensor,
    check_logits,
    model_device_and_dtype,
    run_model,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import Constraint, Integer
from trustlab.core.registry import Registry
from trustlab.core.typing import ArrayLike, FloatArray

__all__ = [
    "MSG_NEEDS_FEATURES",
    "MSG_NOT_FITTED",
    "OOD_DETECTORS",
    "ModelOutputs",
    "OODDetector",
    "feature_module",
    "model_outputs",
]

MSG_NOT_FITTED = "{owner} is not fitted yet: call fit(model=..., x=in_distribution_x, y=...) first."
MSG_NEEDS_FEATURES = (
    "{owner} works on features: pass features=... (e.g. model_outputs(...).features)."
)
MSG_NEEDS_LABELS = "{owner}.fit needs the class labels y of the in-distribution examples."
MSG_NO_LINEAR = (
    "The model has no nn.Linear layer to take features from; name the layer whose input is "
    "the feature vector with layer=... (one of: {names})."
)
MSG_UNKNOWN_LAYER = "The model has no submodule {layer!r}; known submodules: {names}."
MSG_FEATURES_SHAPE = "features must have shape (n_examples, n_features); got shape {shape}."

Self = TypeVar("Self", bound="OODDetector")

#: OOD detectors by name; ``OOD_DETECTORS.build("energy", {"temperature": 1.0})``.
OOD_DETECTORS: Registry[type[OODDetector]] = Registry("OOD detector")


@dataclass(frozen=True)
class ModelOutputs:
    """A model's logits and features on some inputs (CPU, float32).

    Attributes
    ----------
    logits : torch.Tensor, shape (n_examples, n_classes)
    features : torch.Tensor, shape (n_examples, n_features)
    """

    logits: torch.Tensor
    features: torch.Tensor


def _names(model: nn.Module) -> str:
    names = [name for name, _ in model.named_modules() if name]
    return ", ".join(repr(name) for name in names[:20]) or "none"


def feature_module(model: nn.Module, layer: str | None = None) -> nn.Module:
    """The submodule whose input is the feature vector: ``layer``, else the last Linear."""
    if layer is not None:
        modules = dict(model.named_modules())
        if layer not in modules:
            raise ConfigurationError(MSG_UNKNOWN_LAYER.format(layer=layer, names=_names(model)))
        return modules[layer]
    linear = [module for module in model.modules() if isinstance(module, nn.Linear)]
    if not linear:
        raise ConfigurationError(MSG_NO_LINEAR.format(names=_names(model)))
    return linear[-1]


@contextmanager
def _capture(module: nn.Module, store: list[torch.Tensor]) -> Iterator[None]:
    def hook(_: nn.Module, inputs: tuple[Any, ...]) -> None:
        store.append(torch.flatten(inputs[0], 1))

    handle = module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode, and restore each one's mode afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def forward_with_features(
    model: nn.Module, batch: torch.Tensor, *, layer: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits, features)`` of one batch, keeping the autograd graph (for input gradients)."""
    store: list[torch.Tensor] = []
    with _capture(feature_module(model, layer), store):
        logits = run_model(model, batch)
    if not isinstance(logits, torch.Tensor) or not store:
        raise DataError("The model must return a logits tensor and call its feature layer.")
    return logits, store[-1]


def model_outputs(
    *, model: nn.Module, x: ArrayLike, layer: str | None = None, batch_size: int = 256
) -> ModelOutputs:
    """Logits and features of ``x`` in one pass, in eval mode, without gradients.

    Parameters
    ----------
    model : torch.nn.Module
    x : array-like, shape (n_examples, ...)
    layer : str, optional
        The submodule whose input is the feature vector; default the last ``nn.Linear``.
    batch_size : int, default 256

    Examples
    --------
    >>> import torch
    >>> from trustlab.core.models import build_model
    >>> out = model_outputs(model=build_model("digits-cnn"), x=torch.zeros(3, 1, 8, 8))
    >>> tuple(out.logits.shape), tuple(out.features.shape)
    ((3, 10), (3, 128))
    """
    inputs = as_input_tensor(x)
    device, dtype = model_device_and_dtype(model)
    logits, features = [], []
    with eval_mode(model), torch.no_grad():
        for start in range(0, inputs.shape[0], batch_size):
            batch = inputs[start : start + batch_size].to(device)
            if batch.is_floating_point():
                batch = batch.to(dtype)
            out, feats = forward_with_features(model, batch, layer=layer)
            logits.append(out.detach().float().cpu())
            features.append(feats.detach().float().cpu())
    all_logits = check_logits(torch.cat(logits), n_examples=inputs.shape[0])
    return ModelOutputs(logits=all_logits, features=torch.cat(features))


def as_features(features: ArrayLike | None, *, owner: str) -> torch.Tensor:
    """Features as a finite float64 CPU tensor of shape (n, d)."""
    if features is None:
        raise ConfigurationError(MSG_NEEDS_FEATURES.format(owner=owner))
    tensor = as_input_tensor(features).to(torch.float64).cpu()
    if tensor.dim() != 2:
        raise DataError(MSG_FEATURES_SHAPE.format(shape=tuple(tensor.shape)))
    return tensor


def as_logits(logits: ArrayLike) -> torch.Tensor:
    """Logits as a finite float64 CPU tensor of shape (n, n_classes)."""
    tensor = as_input_tensor(logits)  # refuses NaN and infinities, naming the row
    if tensor.dim() != 2:
        raise DataError(MSG_LOGITS_SHAPE.format(shape=tuple(tensor.shape), n_examples=len(tensor)))
    return tensor.detach().to(device="cpu", dtype=torch.float64)


class OODDetector(abc.ABC):
    """An out-of-distribution detector: ``fit`` on in-distribution data, then ``score``.

    Subclasses set ``needs_fit``, ``needs_features`` and ``needs_labels`` and implement
    :meth:`score_outputs` (and :meth:`fit_outputs` when they learn something).

    Parameters
    ----------
    batch_size : int, default 256
        Rows per forward pass in :meth:`fit` and :meth:`score`.
    """

    name: ClassVar[str]
    needs_fit: ClassVar[bool] = False
    needs_features: ClassVar[bool] = False
    needs_labels: ClassVar[bool] = False
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"batch_size": Integer(low=1)}

    batch_size: int
    layer: str | None = None

    def fit(self: Self, *, model: nn.Module, x: ArrayLike, y: ArrayLike | None = None) -> Self:
        """Learn from in-distribution inputs ``x`` (and labels ``y`` where needed).

        Returns
        -------
        self
        """
        if not self.needs_fit:
            return self
        outputs = model_outputs(model=model, x=x, layer=self.layer, batch_size=self.batch_size)
        return self.fit_outputs(logits=outputs.logits, features=outputs.features, y=y)

    def fit_outputs(
        self: Self,
        *,
        logits: ArrayLike | None = None,
        features: ArrayLike | None = None,
        y: ArrayLike | None = None,
    ) -> Self:
        """:meth:`fit` on outputs computed once with :func:`model_outputs`."""
        return self

    def score(self, *, model: nn.Module, x: ArrayLike) -> FloatArray:
        """Outlier scores of ``x`` (higher: more likely OOD), float64, shape (n_examples,)."""
        self._check_fitted()
        outputs = model_outputs(model=model, x=x, layer=self.layer, batch_size=self.batch_size)
        return self.score_outputs(logits=outputs.logits, features=outputs.features)

    @abc.abstractmethod
    def score_outputs(self, *, logits: ArrayLike, features: ArrayLike | None = None) -> FloatArray:
        """:meth:`score` on outputs computed once with :func:`model_outputs`."""

    def _check_fitted(self) -> None:
        if self.needs_fit and not hasattr(self, "n_fitted_"):
            raise ConfigurationError(MSG_NOT_FITTED.format(owner=type(self).__name__))


def to_array(values: torch.Tensor) -> FloatArray:
    """A float64 NumPy copy of a 1-D tensor."""
    out: FloatArray = values.detach().cpu().to(torch.float64).numpy()
    return np.asarray(out, dtype=np.float64)
