"""The sanity checks of Adebayo et al. (2018): do the maps depend on the model and the data?

"Sanity checks for saliency maps" (NeurIPS 2018). A map that barely changes when the model's
weights are replaced by random ones (**cascading model-parameter randomisation**) or when the
model is trained on permuted labels (**data randomisation**) explains the input, not the model:
an edge detector would draw it. Each check reports the Spearman rank correlation between the
original maps and the maps after randomisation (on absolute values by default, as in the
paper's main figures) and flags the method when the correlation stays above ``threshold``
after full randomisation, the way the robustness sanity checks flag gradient masking. The
paper sets no threshold; 0.5 is trustlab's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor
from trustlab.core.params import Boolean, Integer, Real, Seed, check_param
from trustlab.core.seeding import seeded
from trustlab.core.training import fit_classifier
from trustlab.core.typing import ArrayLike
from trustlab.explain.attribution import as_maps
from trustlab.explain.base import Explainer, TargetLike

__all__ = [
    "RandomisationReport",
    "data_randomisation",
    "model_randomisation",
    "permuted_label_model",
    "randomisable_layers",
    "rank_correlation",
]

#: Above this mean rank correlation after full randomisation, a method is flagged.
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class RandomisationReport:
    """Rank correlation of the maps with the original ones after each randomisation step.

    Attributes
    ----------
    check : str
        ``"model"`` (cascading parameter randomisation) or ``"data"`` (permuted labels).
    method : str
        The attribution method.
    steps : list of str
        What was randomised at each step (``model``: the layers randomised so far, top first;
        ``data``: one step).
    correlations : np.ndarray, shape (n_steps,)
        Mean Spearman correlation over the examples at each step.
    final : np.ndarray, shape (n,)
        Each example's correlation after the last step.
    threshold : float
    flagged : bool
        True when the last mean correlation exceeds ``threshold``: the maps do not depend
        enough on the model (or its training labels) to explain it.
    """

    check: str
    method: str
    steps: list[str]
    correlations: np.ndarray
    final: np.ndarray
    threshold: float
    flagged: bool

    @property
    def reason(self) -> str:
        """One sentence saying what was found."""
        what = "model parameters" if self.check == "model" else "training labels"
        verdict = "fails" if self.flagged else "passes"
        return (
            f"{self.method} {verdict} the {what} randomisation check: rank correlation "
            f"{self.correlations[-1]:.2f} with the original maps after randomisation "
            f"(flagged above {self.threshold:g})."
        )


def rank_correlation(first: ArrayLike, second: ArrayLike, *, absolute: bool = True) -> np.ndarray:
    """Spearman correlation between paired maps, one value per example (ties averaged).

    Parameters
    ----------
    first, second : array-like, shape (n, ...)
    absolute : bool, default=True
        Compare absolute values (the paper's default view).

    Returns
    -------
    np.ndarray of float64, shape (n,); 0 where a map is constant.

    Examples
    --------
    >>> a = np.array([[1.0, 2.0, 3.0]])
    >>> rank_correlation(a, -a, absolute=False)
    array([-1.])
    """
    values = []
    for maps in (first, second):
        array = maps.detach().cpu().numpy() if isinstance(maps, torch.Tensor) else np.asarray(maps)
        array = array.reshape(len(array), -1).astype(np.float64)
        values.append(np.abs(array) if absolute else array)
    ranks = [rankdata(v, axis=1) for v in values]
    centred = [r - r.mean(axis=1, keepdims=True) for r in ranks]
    numerator = (centred[0] * centred[1]).sum(axis=1)
    denominator = np.sqrt((centred[0] ** 2).sum(axis=1) * (centred[1] ** 2).sum(axis=1))
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the modules with their own parameters and ``reset_parameters``, in forward
    definition order (the cascade randomises them from the last one back)."""
    return [
        name
        for name, module in model.named_modules()
        if name
        and any(True for _ in module.parameters(recurse=False))
        and callable(getattr(module, "reset_parameters", None))
    ]


def _pooled(values: torch.Tensor) -> torch.Tensor:
    """Image attributions pooled over channels; other attributions as they are."""
    return as_maps(values) if values.dim() == 4 else values


def _maps(
    explainer: Explainer, model: nn.Module, x: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    return _pooled(explainer.attribute(model=model, x=x, target=target).values)


def _report(
    check: str, explainer: Explainer, steps: list[str], per_step: list[np.ndarray], threshold: float
) -> RandomisationReport:
    correlations = np.array([float(np.mean(c)) for c in per_step])
    return RandomisationReport(
        check=check,
        method=explainer.name,
        steps=steps,
        correlations=correlations,
        final=per_step[-1],
        threshold=threshold,
        flagged=bool(correlations[-1] > threshold),
    )


def model_randomisation(
    *,
    model: nn.Module,
    x: ArrayLike,
    explainer: Explainer,
    target: TargetLike = None,
    absolute: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
    seed: int = 0,
) -> RandomisationReport:
    """Cascading model-parameter randomisation (Adebayo et al., 2018, section 3.1).

    Re-initialises the model's layers one after another, from the output layer back to the
    input (each step keeps the earlier steps' random weights), on a copy of the model, and
    correlates each step's maps with the original ones. The explained class stays the original
    model's (``target`` or its predictions).

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged.
    x : array-like, shape (n, ...)
    explainer : Explainer
    target : int or array-like of int, optional
    absolute : bool, default=True
    threshold : float, default=0.5
    seed : int, default=0
        Seeds the random weights.

    Returns
    -------
    RandomisationReport
    """
    absolute = check_param(absolute, Boolean(), name="absolute", owner="model_randomisation")
    threshold = check_param(
        threshold, Real(low=-1, high=1), name="threshold", owner="model_randomisation"
    )
    seed = check_param(seed, Seed, name="seed", owner="model_randomisation")
    inputs = as_input_tensor(x)
    original = explainer.attribute(model=model, x=inputs, target=target)
    labels = original.target
    reference = _pooled(original.values)
    randomised = copy.deepcopy(model)
    modules = dict(randomised.named_modules())
    steps: list[str] = []
    per_step: list[np.ndarray] = []
    with seeded(seed):
        for name in reversed(randomisable_layers(randomised)):
            modules[name].reset_parameters()
            steps.append(name)
            maps = _maps(explainer, randomised, inputs, labels)
            per_step.append(rank_correlation(reference, maps, absolute=absolute))
    return _report("model", explainer, steps, per_step, threshold)


def permuted_label_model(
    *,
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike,
    epochs: int = 20,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """A copy of ``model``, re-initialised and trained on ``x`` with randomly permuted labels.

    The model of Adebayo et al.'s data randomisation test: it can only memorise, so maps that
    explain it should differ from the maps of the model trained on the true labels.
    """
    epochs = check_param(epochs, Integer(low=1), name="epochs", owner="permuted_label_model")
    seed = check_param(seed, Seed, name="seed", owner="permuted_label_model")
    labels = as_label_tensor(y)
    permuted = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    trained = copy.deepcopy(model)
    with seeded(seed):
        for name in randomisable_layers(trained):
            dict(trained.named_modules())[name].reset_parameters()
    fit_classifier(trained, x, permuted, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
    return trained


def data_randomisation(
    *,
    model: nn.Module,
    randomised_model: nn.Module,
    x: ArrayLike,
    explainer: Explainer,
    target: TargetLike = None,
    absolute: bool = True,
    threshold: float = DEFAULT_THRESHOLD,
) -> RandomisationReport:
    """Data randomisation (Adebayo et al., 2018, section 3.2).

    Correlates the maps of ``model`` with those of ``randomised_model``, the same architecture
    trained on permuted labels (:func:`permuted_label_model`), for the same classes.

    Returns
    -------
    RandomisationReport
    """
    absolute = check_param(absolute, Boolean(), name="absolute", owner="data_randomisation")
    threshold = check_param(
        threshold, Real(low=-1, high=1), name="threshold", owner="data_randomisation"
    )
    inputs = as_input_tensor(x)
    original = explainer.attribute(model=model, x=inputs, target=target)
    maps = _maps(explainer, randomised_model, inputs, original.target)
    correlation = rank_correlation(_pooled(original.values), maps, absolute=absolute)
    return _report("data", explainer, ["permuted labels"], [correlation], threshold)
