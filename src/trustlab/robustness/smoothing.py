"""Randomized smoothing: a certifiably robust classifier built from any base classifier.

Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via Randomized Smoothing",
ICML 2019 (reference code: locuslab/smoothing, ``code/core.py``).

Given a base classifier ``f`` mapping inputs to class scores, the smoothed classifier is
``g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c)``. If the top class has probability at least
``pA`` under the noise and ``pA > 1/2``, then ``g`` is constant on the L2 ball of radius
``sigma * Phi^-1(pA)`` around ``x`` (Theorem 1 of the paper, with ``pB = 1 - pA``). The
probabilities are estimated by Monte Carlo, so both procedures below hold with probability at
least ``1 - alpha`` over the noise:

- :meth:`Smooth.predict` counts the base classifier's votes over ``n`` noisy copies and returns
  the top class unless a two-sided binomial test of the top two counts is not significant at
  ``alpha``, in which case it abstains (``ABSTAIN = -1``).
- :meth:`Smooth.certify` guesses the top class from ``n0`` *selection* samples, then counts it in
  ``n`` fresh *estimation* samples, takes the one-sided Clopper-Pearson lower bound ``pA_lower``
  at level ``alpha``, and returns the class with radius ``sigma * Phi^-1(pA_lower)``, or abstains
  when ``pA_lower < 1/2``.

Threat model: an L2-bounded perturbation of the input; the certificate is exact for the
smoothed classifier ``g``, not for the base classifier ``f``.

Noise comes from a ``torch.Generator`` seeded per input from ``(seed, input index, stage)``, so
a result depends only on the seed, the input's position and ``batch_size`` (the noise of one
input is drawn ``batch_size`` copies at a time), never on the other inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import Constraint, Integer, Seed, check_param, validate_params
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.robustness._deprecation import renamed, warn_deprecated
from trustlab.robustness._params import AT_LEAST_ONE, POSITIVE, UNIT_OPEN

__all__ = [
    "ABSTAIN",
    "CertifyResult",
    "Smooth",
    "certified_accuracy_curve",
    "clopper_pearson_lower",
    "plot_certified_accuracy",
]

#: The label :class:`Smooth` returns when it abstains.
ABSTAIN = -1

MSG_BASE_CLASSIFIER = (
    "Smooth(base_classifier=...) is deprecated in 0.2 and will be removed in 0.4; build "
    "Smooth(num_classes=..., sigma=...) and pass the model to each call: "
    "smooth.certify(model=base_classifier, x=...)."
)
MSG_NO_MODEL = (
    "{owner} needs the base classifier: pass model=..., the classifier whose noisy votes are "
    "counted."
)
MSG_COUNT = (
    "clopper_pearson_lower needs 0 <= successes <= trials and trials >= 1. Got successes="
    "{successes!r} and trials={trials!r}."
)
MSG_SCORES_SHAPE = (
    "The base classifier must return scores of shape (batch, {num_classes}) for Smooth with "
    "num_classes={num_classes}; got shape {shape}. Pass the model's real number of classes."
)
MSG_GRID = (
    "radii_grid must be a non-empty 1-D sequence of finite radii >= 0; got {value!r}. Pass e.g. "
    "radii_grid=np.linspace(0, 1, 21)."
)
MSG_CURVE_LENGTH = "radii, y_pred and y_true must have one entry per input; got lengths {lengths}."
MSG_RADII = (
    "radii must be finite numbers >= 0 (0 for abstentions); found {value!r} at index {index}."
)
MSG_PLOT = (
    "Plotting the certified-accuracy curve needs matplotlib, which is not installed. Install it "
    "with: pip install trustlab[plot]"
)


@dataclass(frozen=True)
class CertifyResult:
    """Certified predictions of many inputs, as NumPy arrays of shape (n_inputs,).

    Attributes
    ----------
    predictions : ndarray of int64
        The certified class, or ``ABSTAIN`` (-1).
    radii : ndarray of float64
        The certified L2 radius (0.0 where the prediction abstains).
    p_lower : ndarray of float64
        The Clopper-Pearson lower bound on the top class's probability under the noise.
    counts : ndarray of int64
        How many of the ``n`` estimation samples voted for the selected class.
    """

    predictions: np.ndarray
    radii: np.ndarray
    p_lower: np.ndarray
    counts: np.ndarray

    def certified_accuracy(
        self,
        *,
        y_true: ArrayLike | None = None,
        radius: float = 0.0,
        labels: ArrayLike | None = None,
    ) -> float:
        """Share of inputs certified correct with a radius of at least ``radius``.

        ``y_true`` holds the true labels (``labels`` is its deprecated name).
        """
        truth: ArrayLike = renamed(
            y_true, labels, new="y_true", old="labels", owner="CertifyResult.certified_accuracy"
        )
        grid, accuracy = certified_accuracy_curve(
            radii=self.radii, y_pred=self.predictions, y_true=truth, radii_grid=[radius]
        )
        del grid
        return float(accuracy[0])


def clopper_pearson_lower(*, successes: int, trials: int, alpha: float) -> float:
    """One-sided ``(1 - alpha)`` Clopper-Pearson lower confidence bound on a binomial proportion.

    The ``alpha``-quantile of ``Beta(successes, trials - successes + 1)``, and 0 when there is no
    success. It equals the lower end of the two-sided interval at level ``2 * alpha``, which is
    what the reference code computes with ``proportion_confint(nA, n, alpha=2 * alpha,
    method="beta")``.

    >>> round(clopper_pearson_lower(successes=100, trials=100, alpha=0.001), 4)
    0.9333
    """
    from scipy.stats import beta

    if isinstance(successes, bool) or isinstance(trials, bool):
        raise ConfigurationError(MSG_COUNT.format(successes=successes, trials=trials))
    if not (0 <= int(successes) <= int(trials)) or int(trials) < 1:
        raise ConfigurationError(MSG_COUNT.format(successes=successes, trials=trials))
    alpha = check_param(alpha, UNIT_OPEN, name="alpha", owner="clopper_pearson_lower")
    if successes == 0:
        return 0.0
    return float(beta.ppf(alpha, int(successes), int(trials) - int(successes) + 1))


def _noise_seed(seed: int, index: int, stage: int) -> int:
    """A 63-bit seed for one input's noise at one stage (selection, estimation, prediction)."""
    state = np.random.SeedSequence([seed, index, stage]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


_SELECTION, _ESTIMATION, _PREDICTION = 0, 1, 2


class Smooth:
    """A smoothed classifier ``g`` around a base classifier, with prediction and certification.

    The object holds the smoothing (the number of classes and the noise); the base classifier
    is passed to every call as ``model=``, so one ``Smooth`` serves many models.

    Parameters
    ----------
    num_classes : int
        Number of classes, >= 2.
    sigma : float
        Standard deviation of the isotropic Gaussian noise (in input units), > 0.
    base_classifier : torch.nn.Module, optional
        Deprecated in 0.2 (removed in 0.4): pass the model to each call instead. When given,
        it is the model of calls that pass none.

    Notes
    -----
    Follows ``Smooth`` of locuslab/smoothing. Departures: the noise is drawn from a generator
    seeded per input (the reference draws from torch's global generator), and batch versions
    :meth:`predict_batch` and :meth:`certify_batch` run over many inputs. The base classifier
    (``model``) maps a batch of inputs (batch, ...) to class scores (batch, num_classes); its
    arg-max is the base prediction. It is run in eval mode, without gradients, on its own
    device. Train it with Gaussian noise of the same ``sigma`` for useful certificates.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> base = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = base.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    ...     _ = base.bias.zero_()
    >>> smooth = Smooth(num_classes=2, sigma=0.5)
    >>> label, radius = smooth.certify(
    ...     model=base, x=torch.tensor([2.0, 0.0]), n0=100, n=1000, alpha=0.001
    ... )
    >>> label, 0.0 < radius < 2.0  # the distance from x to the decision boundary
    (0, True)
    """

    ABSTAIN = ABSTAIN

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "num_classes": Integer(low=2),
        "sigma": POSITIVE,
    }

    def __init__(
        self, *, num_classes: int, sigma: float, base_classifier: nn.Module | None = None
    ) -> None:
        if base_classifier is not None:
            warn_deprecated(MSG_BASE_CLASSIFIER)
        self._default_model = base_classifier
        self.num_classes = num_classes
        self.sigma = sigma
        validate_params(self)

    # ----------------------------------------------------------------------------------------
    # One input

    def predict(
        self,
        *,
        model: nn.Module | None = None,
        x: ArrayLike,
        n: int,
        alpha: float,
        batch_size: int = 1000,
        seed: int = 0,
    ) -> int:
        """The smoothed prediction of one input ``x`` (shape (...)), or ``ABSTAIN``.

        Counts the votes of the base classifier ``model`` on ``n`` noisy copies of ``x``;
        abstains unless a two-sided binomial test that the top two classes are equally likely
        rejects at level ``alpha``. The probability of returning a class other than ``g(x)``
        is at most ``alpha``.
        """
        labels = self.predict_batch(
            model=model, x=self._one(x), n=n, alpha=alpha, batch_size=batch_size, seed=seed
        )
        return int(labels[0])

    def certify(
        self,
        *,
        model: nn.Module | None = None,
        x: ArrayLike,
        n0: int,
        n: int,
        alpha: float,
        batch_size: int = 1000,
        seed: int = 0,
    ) -> tuple[int, float]:
        """Certify one input ``x`` (shape (...)): ``(class, L2 radius)`` or ``(ABSTAIN, 0.0)``.

        With probability at least ``1 - alpha`` over the noise, a returned class is what
        ``g`` (smoothing the base classifier ``model``) predicts at every point within the
        returned L2 radius of ``x``.
        """
        result = self.certify_batch(
            model=model, x=self._one(x), n0=n0, n=n, alpha=alpha, batch_size=batch_size, seed=seed
        )
        return int(result.predictions[0]), float(result.radii[0])

    # ----------------------------------------------------------------------------------------
    # Many inputs

    def predict_batch(
        self,
        *,
        model: nn.Module | None = None,
        x: ArrayLike,
        n: int,
        alpha: float,
        batch_size: int = 1000,
        seed: int = 0,
    ) -> np.ndarray:
        """:meth:`predict` for every row of ``x`` (shape (n_inputs, ...)); int64 (n_inputs,).

        Input ``i`` uses the noise seeded by ``(seed, i)``; results do not depend on the other
        inputs.
        """
        from scipy.stats import binomtest

        base, x_t, n, alpha = self._call(
            "Smooth.predict", model=model, x=x, n=n, alpha=alpha, batch_size=batch_size, seed=seed
        )
        out = np.empty(x_t.shape[0], dtype=np.int64)
        for i in range(x_t.shape[0]):
            counts = self._sample_noise(
                base, x_t[i], num=n, batch_size=batch_size, seed=_noise_seed(seed, i, _PREDICTION)
            )
            order = np.argsort(-counts, kind="stable")
            top, runner_up = int(counts[order[0]]), int(counts[order[1]])
            p_value = binomtest(top, top + runner_up, p=0.5).pvalue
            out[i] = ABSTAIN if p_value > alpha else int(order[0])
        return out

    def certify_batch(
        self,
        *,
        model: nn.Module | None = None,
        x: ArrayLike,
        n0: int,
        n: int,
        alpha: float,
        batch_size: int = 1000,
        seed: int = 0,
    ) -> CertifyResult:
        """:meth:`certify` for every row of ``x`` (shape (n_inputs, ...)).

        Input ``i`` uses selection and estimation noise seeded by ``(seed, i)``.
        """
        from scipy.stats import norm

        owner = "Smooth.certify"
        n0 = check_param(n0, AT_LEAST_ONE, name="n0", owner=owner)
        base, x_t, n, alpha = self._call(
            owner, model=model, x=x, n=n, alpha=alpha, batch_size=batch_size, seed=seed
        )
        m = x_t.shape[0]
        predictions = np.full(m, ABSTAIN, dtype=np.int64)
        radii = np.zeros(m, dtype=np.float64)
        p_lower = np.zeros(m, dtype=np.float64)
        counts_a = np.zeros(m, dtype=np.int64)
        for i in range(m):
            selection = self._sample_noise(
                base, x_t[i], num=n0, batch_size=batch_size, seed=_noise_seed(seed, i, _SELECTION)
            )
            guess = int(np.argmax(selection))
            estimation = self._sample_noise(
                base, x_t[i], num=n, batch_size=batch_size, seed=_noise_seed(seed, i, _ESTIMATION)
            )
            n_a = int(estimation[guess])
            bound = clopper_pearson_lower(successes=n_a, trials=n, alpha=alpha)
            counts_a[i] = n_a
            p_lower[i] = bound
            if bound >= 0.5:
                predictions[i] = guess
                radii[i] = float(self.sigma) * float(norm.ppf(bound))
        return CertifyResult(predictions=predictions, radii=radii, p_lower=p_lower, counts=counts_a)

    # ----------------------------------------------------------------------------------------
    # Internals

    def _call(
        self,
        owner: str,
        *,
        model: nn.Module | None,
        x: ArrayLike,
        n: int,
        alpha: float,
        batch_size: int,
        seed: int,
    ) -> tuple[nn.Module, torch.Tensor, int, float]:
        """The checked arguments of a call: the base classifier (``model``, else the deprecated
        ``base_classifier``), the inputs as a float tensor, ``n`` and ``alpha``."""
        base = model if model is not None else self._default_model
        if base is None:
            raise ConfigurationError(MSG_NO_MODEL.format(owner=owner))
        n = check_param(n, AT_LEAST_ONE, name="n", owner=owner)
        alpha = check_param(alpha, UNIT_OPEN, name="alpha", owner=owner)
        check_batch_size(batch_size, owner=owner)
        check_param(seed, Seed, name="seed", owner=owner)
        x_t = as_input_tensor(x)
        return base, x_t if x_t.is_floating_point() else x_t.float(), n, alpha

    def _one(self, x: ArrayLike) -> torch.Tensor:
        tensor = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
        return tensor.unsqueeze(0)

    def _sample_noise(
        self, model: nn.Module, x: torch.Tensor, *, num: int, batch_size: int, seed: int
    ) -> np.ndarray:
        """Votes of ``model`` on ``num`` noisy copies of ``x``: int64 (num_classes,)."""
        num_classes, sigma = self.num_classes, self.sigma
        device, dtype = model_device_and_dtype(model)
        generator = torch.Generator(device=device).manual_seed(seed)
        point = x.to(device=device, dtype=dtype)
        counts = torch.zeros(num_classes, dtype=torch.int64, device=device)
        remaining = num
        with model_mode(model, training=False), torch.no_grad():
            while remaining > 0:
                this = min(batch_size, remaining)
                remaining -= this
                batch = point.unsqueeze(0).expand(this, *point.shape)
                noise = (
                    torch.randn(batch.shape, generator=generator, device=device, dtype=dtype)
                    * sigma
                )
                scores = model(batch + noise)
                if (
                    not isinstance(scores, torch.Tensor)
                    or scores.dim() != 2
                    or scores.shape != (this, num_classes)
                ):
                    shape: Any = getattr(scores, "shape", type(scores).__name__)
                    raise DataError(MSG_SCORES_SHAPE.format(num_classes=num_classes, shape=shape))
                counts += torch.bincount(scores.argmax(dim=1), minlength=num_classes)
        result: np.ndarray = counts.cpu().numpy().astype(np.int64)
        return result


def certified_accuracy_curve(
    *,
    radii: ArrayLike,
    y_pred: ArrayLike | None = None,
    y_true: ArrayLike | None = None,
    radii_grid: Sequence[float] | np.ndarray,
    predictions: ArrayLike | None = None,
    labels: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Certified accuracy at each radius of ``radii_grid``.

    The certified accuracy at radius ``r`` is the share of inputs whose certified prediction
    is correct with a certified radius of at least ``r``; abstentions (``ABSTAIN``) never
    count. This is the curve of Figure 1 / Table 1 of Cohen et al. (2019).

    Parameters
    ----------
    radii, y_pred : array-like of shape (n_inputs,)
        The certified radii and predictions, from :meth:`Smooth.certify_batch`.
    y_true : array-like of shape (n_inputs,)
        The true labels.
    radii_grid : sequence of float
        Radii >= 0 at which to evaluate the curve.
    predictions, labels : array-like, optional
        Deprecated in 0.2 (removed in 0.4): the former names of ``y_pred`` and ``y_true``.

    Returns
    -------
    (grid, accuracy) : tuple of ndarray of float64, each of shape (len(radii_grid),)

    Examples
    --------
    >>> certified_accuracy_curve(
    ...     radii=[0.5, 1.0, 0.0], y_pred=[1, 0, -1], y_true=[1, 1, 2], radii_grid=[0, 0.5, 1]
    ... )[1].tolist()
    [0.3333333333333333, 0.3333333333333333, 0.0]
    """
    owner = "certified_accuracy_curve"
    pred: ArrayLike = renamed(y_pred, predictions, new="y_pred", old="predictions", owner=owner)
    true: ArrayLike = renamed(y_true, labels, new="y_true", old="labels", owner=owner)
    grid = np.asarray(radii_grid, dtype=np.float64) if _is_sequence(radii_grid) else None
    if grid is None or grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise DataError(MSG_GRID.format(value=radii_grid))
    if bool(np.any(grid < 0)):
        raise DataError(MSG_GRID.format(value=radii_grid))
    radius = np.asarray(radii, dtype=np.float64).reshape(-1)
    predicted = as_label_tensor(np.asarray(pred).astype(np.int64)).numpy()
    truth = as_label_tensor(true).numpy()
    lengths = (radius.size, predicted.size, truth.size)
    if len(set(lengths)) != 1 or radius.size == 0:
        raise DataError(MSG_CURVE_LENGTH.format(lengths=lengths))
    bad = ~np.isfinite(radius) | (radius < 0)
    if bool(bad.any()):
        index = int(np.argmax(bad))
        raise DataError(MSG_RADII.format(value=float(radius[index]), index=index))
    correct = (predicted == truth) & (predicted != ABSTAIN)
    accuracy = np.array(
        [float(np.mean(correct & (radius >= r))) for r in grid.tolist()], dtype=np.float64
    )
    return grid, accuracy


def _is_sequence(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def plot_certified_accuracy(
    *, grid: ArrayLike, accuracy: ArrayLike, ax: Any = None, label: str | None = None
) -> Any:
    """Plot certified accuracy against L2 radius with matplotlib; returns the axes.

    Needs the ``plot`` extra (``pip install trustlab[plot]``).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigurationError(MSG_PLOT) from None
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(np.asarray(grid), np.asarray(accuracy), label=label)
    ax.set_xlabel("L2 radius")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    if label is not None:
        ax.legend()
    return ax
