"""ROAR-lite: remove the most relevant pixels from the data, retrain, and see accuracy fall.

Hooker et al., 2019, "A benchmark for interpretability methods in deep neural networks". For
each fraction ``t``, the ``t`` share of most relevant pixels of every training and test image
(by its map) is replaced by the per-channel mean of the training images, a fresh model is
trained from scratch on the modified training set, and its accuracy on the modified test set is
measured. A method whose maps find what the model needs makes accuracy fall faster than a
random ranking (:attr:`RoarResult.random_accuracy`). "Lite": one small model per fraction and
no repeats (the paper trains five per point on ImageNet), so it runs in minutes on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor, check_same_length
from trustlab.core.errors import DataError
from trustlab.core.params import Integer, Real, Seed, check_param
from trustlab.core.progress import ProgressCallback, report
from trustlab.core.seeding import seeded
from trustlab.core.training import accuracy, fit_classifier
from trustlab.core.typing import ArrayLike
from trustlab.explain.attribution import as_maps
from trustlab.explain.metrics.deletion import perturbation_ranks

__all__ = ["RoarResult", "remove_top_pixels", "roar_lite"]

OWNER = "roar_lite"
MSG_FRACTIONS = "The 'fractions' parameter of roar_lite must be numbers in [0, 1). Got {value!r}."
MSG_MAPS = "{name} must hold one map per image of {field}: {want} maps; got shape {got}."


@dataclass(frozen=True)
class RoarResult:
    """Test accuracy of models retrained on data with the most relevant pixels removed.

    Attributes
    ----------
    fractions : np.ndarray, shape (k,)
        Shares of pixels removed.
    accuracy : np.ndarray, shape (k,)
        Test accuracy after removing pixels ranked by the maps.
    random_accuracy : np.ndarray, shape (k,)
        The same with a random ranking (the baseline to beat).
    """

    fractions: np.ndarray
    accuracy: np.ndarray
    random_accuracy: np.ndarray

    @property
    def gap(self) -> float:
        """Mean of ``random_accuracy - accuracy``: positive when the maps beat random."""
        return float(np.mean(self.random_accuracy - self.accuracy))


def remove_top_pixels(
    x: torch.Tensor, maps: torch.Tensor, *, fraction: float, fill: torch.Tensor
) -> torch.Tensor:
    """``x`` with the ``fraction`` most relevant pixels of each map set to ``fill`` (per channel).

    Parameters
    ----------
    x : torch.Tensor, shape (n, C, H, W)
    maps : torch.Tensor, shape (n, H, W)
    fraction : float
    fill : torch.Tensor, shape (C,)
    """
    count = round(fraction * maps.shape[1] * maps.shape[2])
    removed = (perturbation_ranks(maps) < count).reshape(x.shape[0], 1, *x.shape[2:])
    return torch.where(removed, fill.reshape(1, -1, 1, 1).to(x.dtype), x)


def _maps(values: ArrayLike, *, name: str, field: str, images: torch.Tensor) -> torch.Tensor:
    tensor = values if isinstance(values, torch.Tensor) else torch.from_numpy(np.asarray(values))
    maps = as_maps(tensor).detach().cpu().float()
    if maps.shape != (images.shape[0], *images.shape[2:]):
        raise DataError(
            MSG_MAPS.format(name=name, field=field, want=images.shape[0], got=tuple(tensor.shape))
        )
    return maps


def roar_lite(
    *,
    build_model: Callable[[], nn.Module],
    x_train: ArrayLike,
    y_train: ArrayLike,
    attributions_train: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    attributions_test: ArrayLike,
    fractions: Sequence[float] = (0.1, 0.3, 0.5, 0.7),
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> RoarResult:
    """Retrain after removing the most relevant pixels; compare with a random removal.

    Parameters
    ----------
    build_model : callable
        Returns a fresh, untrained model (called once per fraction and ranking, inside a
        seeded block, so the initial weights are the same each time).
    x_train, y_train : array-like, shapes (n, C, H, W) and (n,)
    attributions_train : array-like, shape (n, C, H, W), (n, 1, H, W) or (n, H, W)
        The maps of the training images (pooled over channels by summing).
    x_test, y_test, attributions_test : array-like
        The same for the test images.
    fractions : sequence of float, default=(0.1, 0.3, 0.5, 0.7)
        Shares of pixels to remove, each in [0, 1).
    epochs, lr, batch_size : training of each model (:func:`trustlab.core.training.fit_classifier`)
    seed : int, default=0
        Seeds the models, their training and the random ranking.
    progress : callable, optional
        Receives a :class:`~trustlab.core.progress.ProgressEvent` (stage ``"roar"``) after each
        model is trained.

    Returns
    -------
    RoarResult
    """
    epochs = check_param(epochs, Integer(low=1), name="epochs", owner=OWNER)
    seed = check_param(seed, Seed, name="seed", owner=OWNER)
    shares = [
        check_param(f, Real(low=0, high=1, closed="left"), name="fractions", owner=OWNER)
        for f in fractions
    ]
    if not shares:
        raise DataError(MSG_FRACTIONS.format(value=list(fractions)))
    train_x = as_input_tensor(x_train).float().cpu()
    test_x = as_input_tensor(x_test).float().cpu()
    train_y, test_y = as_label_tensor(y_train), as_label_tensor(y_test)
    check_same_length(
        first="x_train", n_first=len(train_x), second="y_train", n_second=len(train_y)
    )
    check_same_length(first="x_test", n_first=len(test_x), second="y_test", n_second=len(test_y))
    maps_train = _maps(
        attributions_train, name="attributions_train", field="x_train", images=train_x
    )
    maps_test = _maps(attributions_test, name="attributions_test", field="x_test", images=test_x)
    generator = torch.Generator().manual_seed(seed)
    random_train = torch.rand(maps_train.shape, generator=generator)
    random_test = torch.rand(maps_test.shape, generator=generator)
    fill = train_x.mean(dim=(0, 2, 3))
    results: dict[str, list[float]] = {"maps": [], "random": []}
    total, done = 2 * len(shares), 0
    for fraction in shares:
        for key, (m_train, m_test) in (
            ("maps", (maps_train, maps_test)),
            ("random", (random_train, random_test)),
        ):
            xr = remove_top_pixels(train_x, m_train, fraction=fraction, fill=fill)
            xt = remove_top_pixels(test_x, m_test, fraction=fraction, fill=fill)
            with seeded(seed):
                model = build_model()
            fit_classifier(
                model, xr, train_y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed
            )
            results[key].append(accuracy(model, xt, test_y))
            done += 1
            report(
                progress,
                stage="roar",
                done=done,
                total=total,
                metrics={"accuracy": results[key][-1]},
            )
    return RoarResult(
        fractions=np.asarray(shares, dtype=np.float64),
        accuracy=np.asarray(results["maps"]),
        random_accuracy=np.asarray(results["random"]),
    )
