"""The base class of evasion attacks, their result record, and the tools every attack shares.

An attack gets a classifier that returns logits, inputs ``x`` of shape (n, ...) in a valid range
(``bounds``, ``(0, 1)`` by default), their labels ``y``, and returns an :class:`AttackResult`:
the adversarial examples, re-checked by the base class (finite, inside the valid range, inside
the epsilon ball of the attack's norm) and re-evaluated with one more forward pass, so the
reported accuracy is always recomputed from the returned examples.

Reproducibility does not depend on batch size or order: all randomness an attack draws is
keyed by ``(seed, example index, step)`` through :class:`ExampleRandom`, a counter-based
generator, rather than by a global random stream.

Forward and backward passes are counted per example (a batch of 64 counts 64) by
:class:`CountingModel`, the wrapper every attack's model calls go through.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    check_labels_in_range,
    check_same_length,
    compute_logits,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError, TrustlabError
from trustlab.core.typing import ArrayLike

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` with the number of examples attacked so far."""

MSG_NORM = "The 'norm' parameter of {owner} must be one of {allowed}. Got {value!r} instead."
MSG_POSITIVE = "The {name!r} parameter of {owner} must be a number > 0. Got {value!r} instead."
MSG_NON_NEGATIVE = "The {name!r} parameter of {owner} must be a number >= 0. Got {value!r}."
MSG_INT = "The {name!r} parameter of {owner} must be an int >= {low}. Got {value!r} instead."
MSG_BOUNDS = (
    "The 'bounds' parameter of {owner} must be a pair (low, high) of finite numbers with "
    "low < high. Got {value!r} instead."
)
MSG_OUT_OF_BOUNDS = (
    "x holds values outside the attack's valid input range {bounds}: example {index} has "
    "{value:.6g}. Scale inputs to the range (e.g. divide pixels by 255) or pass bounds=(low, high)."
)
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


class Norm(str, enum.Enum):
    """Threat models: the norm that bounds a perturbation."""

    LINF = "Linf"
    L2 = "L2"
    L1 = "L1"

    @classmethod
    def parse(cls, value: Norm | str, *, owner: str, allowed: tuple[Norm, ...]) -> Norm:
        """``value`` as a :class:`Norm` among ``allowed``; ConfigurationError otherwise."""
        names = ", ".join(repr(norm.value) for norm in allowed)
        try:
            norm = value if isinstance(value, Norm) else cls(str(value).capitalize())
        except ValueError:
            norm = None
        if norm is None or norm not in allowed:
            raise ConfigurationError(MSG_NORM.format(owner=owner, allowed=names, value=value))
        return norm


def check_positive(value: object, *, name: str, owner: str) -> float:
    """``value`` as a float > 0; ConfigurationError naming the parameter otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigurationError(MSG_POSITIVE.format(name=name, owner=owner, value=value))
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigurationError(MSG_POSITIVE.format(name=name, owner=owner, value=value))
    return number


def check_non_negative(value: object, *, name: str, owner: str) -> float:
    """``value`` as a float >= 0; ConfigurationError naming the parameter otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise ConfigurationError(MSG_NON_NEGATIVE.format(name=name, owner=owner, value=value))
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ConfigurationError(MSG_NON_NEGATIVE.format(name=name, owner=owner, value=value))
    return number


def check_int(value: object, *, name: str, owner: str, low: int = 1) -> int:
    """``value`` as an int >= ``low``; ConfigurationError naming the parameter otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigurationError(MSG_INT.format(name=name, owner=owner, value=value, low=low))
    return int(value)


def check_bounds(value: object, *, owner: str) -> tuple[float, float]:
    """``value`` as a pair ``(low, high)`` of finite floats with low < high."""
    try:
        low, high = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ConfigurationError(MSG_BOUNDS.format(owner=owner, value=value)) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigurationError(MSG_BOUNDS.format(owner=owner, value=value))
    return low, high


def check_optional_positive(value: object, *, name: str, owner: str) -> float | None:
    """``None`` if ``value`` is None, else ``value`` checked by :func:`check_positive`."""
    return None if value is None else check_positive(value, name=name, owner=owner)


def positive_or_default(value: object, *, default: float, name: str, owner: str) -> float:
    """``default`` if ``value`` is None, else ``value`` checked by :func:`check_positive`."""
    return default if value is None else check_positive(value, name=name, owner=owner)


def check_bool(value: object, *, message: str, owner: str) -> bool:
    """``value`` if it is a bool; ConfigurationError otherwise.

    ``message`` is the parameter's module constant, formatted with ``owner`` and ``value``.
    """
    if not isinstance(value, bool):
        raise ConfigurationError(message.format(owner=owner, value=value))
    return value


# --------------------------------------------------------------------------------------------
# Norms and projections


def flat(x: torch.Tensor) -> torch.Tensor:
    """``x`` as (n, -1)."""
    return x.reshape(x.shape[0], -1)


def per_example_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The ``norm`` of each example's perturbation, shape (n,)."""
    rows = flat(delta)
    if norm is Norm.LINF:
        return rows.abs().amax(dim=1)
    if norm is Norm.L2:
        return rows.norm(p=2, dim=1)
    return rows.abs().sum(dim=1)


def _expand(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def expand_rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example ``values`` (n,) as (n, 1, ..., 1), to broadcast against ``like`` (n, ...)."""
    return _expand(values, like)


def project(delta: torch.Tensor, *, norm: Norm, eps: float | torch.Tensor) -> torch.Tensor:
    """Project each example's perturbation onto the ``norm`` ball of radius ``eps``.

    Linf clamps; L2 rescales; L1 uses the exact Euclidean projection onto the L1 ball
    (Duchi et al., 2008). ``eps`` may be a float or a per-example tensor of shape (n,).
    """
    eps_t = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device)
    if eps_t.dim() == 0:
        eps_t = eps_t.expand(delta.shape[0])
    if norm is Norm.LINF:
        bound = _expand(eps_t, delta)
        return torch.maximum(torch.minimum(delta, bound), -bound)
    if norm is Norm.L2:
        norms = flat(delta).norm(p=2, dim=1).clamp_min(1e-12)
        factor = torch.clamp(eps_t / norms, max=1.0)
        return delta * _expand(factor, delta)
    return _project_l1(delta, eps_t)


def _project_l1(delta: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    rows = flat(delta)
    magnitude = rows.abs()
    inside = magnitude.sum(dim=1) <= eps
    sorted_abs, _ = torch.sort(magnitude, dim=1, descending=True)
    cumulative = sorted_abs.cumsum(dim=1)
    ranks = torch.arange(1, rows.shape[1] + 1, device=rows.device, dtype=rows.dtype)
    condition = sorted_abs - (cumulative - eps[:, None]) / ranks > 0
    rho = condition.to(rows.dtype).mul(ranks).argmax(dim=1)
    theta = (cumulative.gather(1, rho[:, None]).squeeze(1) - eps) / (rho + 1).to(rows.dtype)
    projected = torch.sign(rows) * torch.clamp(magnitude - theta.clamp_min(0)[:, None], min=0)
    out = torch.where(inside[:, None], rows, projected)
    return out.reshape(delta.shape)


def normalize(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The steepest-ascent direction of unit ``norm`` for a gradient (sign for Linf)."""
    if norm is Norm.LINF:
        return grad.sign()
    if norm is Norm.L2:
        norms = flat(grad).norm(p=2, dim=1).clamp_min(1e-12)
        return grad / _expand(norms, grad)
    norms = flat(grad).abs().sum(dim=1).clamp_min(1e-12)
    return grad / _expand(norms, grad)


# --------------------------------------------------------------------------------------------
# Randomness keyed by example


_MASK32 = 0xFFFFFFFF


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash ("lowbias32"), vectorised on int64 tensors holding 32-bit values."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


class ExampleRandom:
    """Counter-based random numbers keyed by ``(seed, example index, step)``.

    The draw for one example never depends on which other examples share its batch, so an
    attack's result is the same for any batch size or order. ``step`` tells draws apart
    (a restart, an iteration).

    >>> rng = ExampleRandom(seed=0)
    >>> a = rng.uniform(indices=torch.tensor([3, 4]), step=0, shape=(2,))
    >>> b = rng.uniform(indices=torch.tensor([4]), step=0, shape=(2,))
    >>> bool(torch.equal(a[1], b[0]))
    True
    """

    def __init__(self, *, seed: int) -> None:
        self.seed = int(seed)

    def _bits(self, indices: torch.Tensor, step: int, shape: tuple[int, ...]) -> torch.Tensor:
        numel = int(np.prod(shape)) if shape else 1
        key = _mix32(torch.tensor(self.seed, dtype=torch.int64) ^ 0x9E3779B9)
        rows = _mix32(key ^ _mix32(indices.to(torch.int64).cpu() * 0x27D4EB2F + 0x165667B1))
        rows = _mix32(rows ^ _mix32(torch.tensor(int(step) & _MASK32) + 0x61C88647))
        counters = torch.arange(numel, dtype=torch.int64)
        bits = _mix32(rows[:, None] ^ _mix32(counters[None, :] * 0x2C1B3C6D + 0x297A2D39))
        return bits.reshape(len(indices), *shape)

    def uniform(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        shape: tuple[int, ...],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Uniform numbers in [0, 1), shape (len(indices), *shape)."""
        bits = self._bits(indices, step, shape)
        return ((bits >> 8).to(torch.float64) / float(1 << 24)).to(device=device, dtype=dtype)

    def normal(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        shape: tuple[int, ...],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Standard normal numbers (Box-Muller), shape (len(indices), *shape)."""
        u1 = self.uniform(indices=indices, step=2 * step, shape=shape, dtype=torch.float64)
        u2 = self.uniform(indices=indices, step=2 * step + 1, shape=shape, dtype=torch.float64)
        radius = torch.sqrt(-2.0 * torch.log1p(-u1))
        return (radius * torch.cos(2 * math.pi * u2)).to(device=device, dtype=dtype)

    def integers(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        high: int | torch.Tensor,
        shape: tuple[int, ...] = (),
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        """Integers in [0, high), shape (len(indices), *shape); ``high`` may be per example."""
        u = self.uniform(indices=indices, step=step, shape=shape, dtype=torch.float64)
        high_t = torch.as_tensor(high, dtype=torch.float64)
        if high_t.dim() == 1:
            high_t = high_t.reshape(-1, *([1] * len(shape)))
        return torch.floor(u * high_t).to(device=device, dtype=torch.int64)

    def ball(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        like: torch.Tensor,
        norm: Norm,
        eps: float,
    ) -> torch.Tensor:
        """A random point of each example's ``norm`` ball of radius ``eps``, shaped like ``like``.

        Linf: uniform in the cube; L2: a Gaussian direction scaled to a uniform radius in the
        ball; L1: a Laplace direction scaled the same way.
        """
        shape = tuple(like.shape[1:])
        device, dtype = like.device, like.dtype
        if norm is Norm.LINF:
            u = self.uniform(indices=indices, step=step, shape=shape, device=device, dtype=dtype)
            return (2 * u - 1) * eps
        if norm is Norm.L2:
            direction = self.normal(
                indices=indices, step=step, shape=shape, device=device, dtype=dtype
            )
        else:
            u = self.uniform(indices=indices, step=step, shape=shape, device=device, dtype=dtype)
            u = u.clamp(1e-7, 1 - 1e-7)
            direction = torch.sign(u - 0.5) * -torch.log1p(-2 * (u - 0.5).abs())
        unit = direction / _expand(per_example_norm(direction, norm).clamp_min(1e-12), direction)
        dim = int(np.prod(shape))
        radius = self.uniform(
            indices=indices, step=step + 7919, shape=(), device=device, dtype=dtype
        ) ** (1.0 / dim)
        return unit * _expand(radius * eps, unit)


# --------------------------------------------------------------------------------------------
# Counting model calls


class CountingModel(nn.Module):
    """Wraps a classifier and counts forward and backward passes per example.

    A forward of a batch of ``b`` rows adds ``b`` to :attr:`forwards`; a gradient flowing back
    through the output of such a forward adds ``b`` to :attr:`backwards` (once per backward
    call that reaches the output).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.forwards = 0
        self.backwards = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if not isinstance(out, torch.Tensor):
            raise DataError(
                "The model must return a tensor of logits of shape (n_examples, n_classes); "
                f"got {type(out).__name__}."
            )
        rows = int(x.shape[0])
        self.forwards += rows
        if out.requires_grad:
            out.register_hook(self._count_backward(rows))
        return out

    def _count_backward(self, rows: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            del grad
            self.backwards += rows

        return hook


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode and restore each one's mode afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


# --------------------------------------------------------------------------------------------
# The result record


@dataclass(frozen=True)
class AttackResult:
    """What an attack returns; every field is on the CPU.

    Attributes
    ----------
    x_adv : torch.Tensor, shape (n, ...)
        The adversarial examples (the clean input where the attack found nothing better).
    y : torch.Tensor of int64, shape (n,)
        The true labels.
    targets : torch.Tensor of int64, shape (n,), or None
        The target classes of a targeted attack.
    clean_correct : torch.Tensor of bool, shape (n,)
        Whether the model classifies the clean input correctly.
    adv_correct : torch.Tensor of bool, shape (n,)
        Whether the model classifies ``x_adv`` correctly, recomputed from ``x_adv``.
    success : torch.Tensor of bool, shape (n,)
        Untargeted: ``x_adv`` is misclassified. Targeted: it is classified as its target.
    perturbation : torch.Tensor of float, shape (n,)
        The size of ``x_adv - x`` in the attack's norm.
    forwards, backwards : int
        Forward and backward passes the attack spent, counted per example (the final
        re-evaluation of ``x_adv`` and the clean pass are not included).
    norm : Norm
        The threat model.
    eps : float or None
        The radius of the threat model (``None`` for minimum-norm attacks run without one).
    """

    x_adv: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor | None
    clean_correct: torch.Tensor
    adv_correct: torch.Tensor
    success: torch.Tensor
    perturbation: torch.Tensor
    forwards: int
    backwards: int
    norm: Norm
    eps: float | None

    @property
    def n_examples(self) -> int:
        return int(self.y.shape[0])

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.float().mean())

    @property
    def robust_accuracy(self) -> float:
        """Share of examples classified correctly both clean and after the attack."""
        return float((self.clean_correct & self.adv_correct).float().mean())

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())

    def summary(self) -> dict[str, Any]:
        """The headline numbers as JSON-ready values."""
        return {
            "n_examples": self.n_examples,
            "norm": self.norm.value,
            "eps": self.eps,
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
            "success_rate": self.success_rate,
            "forwards": self.forwards,
            "backwards": self.backwards,
        }


# --------------------------------------------------------------------------------------------
# The base class


class Attack(abc.ABC):
    """Base class of evasion attacks on classifiers that return logits.

    Subclasses set the class attributes, store hyperparameters in ``__init__`` (keyword-only,
    checked there with the ``check_*`` helpers of this module or at call time) and implement
    :meth:`_perturb` on one batch. :meth:`generate` does the rest: input checks, eval mode,
    batching, the clean pass, the re-check of every returned example, and the recomputed
    accuracy.

    Class attributes
    ----------------
    name : str
        The attack's registry name.
    norms : tuple of Norm
        The threat models it supports.
    targeted : bool
        Whether it needs ``targets`` (attacks that pick their own targets, like APGD-T, set
        ``targeted = False`` and report the targets they chose).
    """

    name: ClassVar[str]
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
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
            Called as ``progress(done, total)`` after each batch.
        indices : torch.Tensor or ndarray of int, shape (n,), optional
            The examples' identities that key their random draws (default: their positions
            ``0 .. n-1``). An evaluation that attacks a subset of a larger set passes the
            subset's positions in the larger set, so every example draws the same random
            numbers whichever subset or batch it is attacked in.
        """
        owner = type(self).__name__
        batch_size = check_batch_size(batch_size, owner=owner)
        x_t = as_input_tensor(x)
        if not x_t.is_floating_point():
            x_t = x_t.float()
        y_t = as_label_tensor(y)
        check_same_length(first="x", n_first=x_t.shape[0], second="y", n_second=y_t.shape[0])
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
        self._check_range(x_t)
        keys = _example_keys(indices, n=int(x_t.shape[0]))

        device, dtype = model_device_and_dtype(model)
        x_t = x_t.to(dtype)
        counted = CountingModel(model)
        with eval_mode(model):
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
                batch_keys = keys[start:stop]
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
                    chosen.append(picked.detach().cpu())
                else:
                    adv = out
                pieces.append(adv.detach().to("cpu", dtype))
                if progress is not None:
                    progress(stop, n)
            x_adv = torch.cat(pieces) if len(pieces) > 1 else pieces[0]
            self._check_contract(x_t, x_adv)
            adv_logits = compute_logits(model=model, x=x_adv, batch_size=batch_size)
        adv_pred = adv_logits.argmax(dim=1)
        adv_correct = adv_pred == y_t
        reported_targets = t_t if t_t is not None else (torch.cat(chosen) if chosen else None)
        success = adv_pred == t_t if self.targeted and t_t is not None else ~adv_correct
        return AttackResult(
            x_adv=x_adv,
            y=y_t,
            targets=reported_targets,
            clean_correct=clean_correct,
            adv_correct=adv_correct,
            success=success,
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

    def _check_range(self, x: torch.Tensor) -> None:
        low, high = self.bounds
        below = flat(x).amin(dim=1) < low
        above = flat(x).amax(dim=1) > high
        bad = below | above
        if bool(bad.any()):
            index = int(torch.argmax(bad.to(torch.uint8)))
            row = flat(x)[index]
            value = float(row.min()) if bool(below[index]) else float(row.max())
            raise DataError(MSG_OUT_OF_BOUNDS.format(bounds=self.bounds, index=index, value=value))

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


def margin_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per example: the largest other logit minus the true class's logit (> 0: misclassified)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return other.amax(dim=1) - true


# --------------------------------------------------------------------------------------------
# Losses and projections shared by the gradient attacks

MSG_FEW_CLASSES = (
    "{owner} needs a model with at least {needed} classes for its {loss} loss; the model has "
    "{n_classes}. Use a cross-entropy attack (e.g. 'apgd-ce' or 'pgd') instead."
)


def dlr_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The Difference of Logits Ratio loss of Croce & Hein (2020), per example, shape (n,).

    ``-(z_y - max_{i != y} z_i) / (z_(1) - z_(3))`` where ``z_(k)`` is the k-th largest logit.
    It is invariant to shifting and rescaling the logits. Needs at least 3 classes.
    """
    ranked, order = logits.sort(dim=1, descending=True)
    true = logits.gather(1, y[:, None]).squeeze(1)
    top_is_true = order[:, 0] == y
    best_other = torch.where(top_is_true, ranked[:, 1], ranked[:, 0])
    return -(true - best_other) / (ranked[:, 0] - ranked[:, 2] + 1e-12)


def targeted_dlr_loss(logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The targeted DLR loss of Croce & Hein (2020), per example, shape (n,).

    ``-(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2)``; needs at least 4 classes.
    """
    ranked, _ = logits.sort(dim=1, descending=True)
    true = logits.gather(1, y[:, None]).squeeze(1)
    target = logits.gather(1, targets[:, None]).squeeze(1)
    return -(true - target) / (ranked[:, 0] - 0.5 * (ranked[:, 2] + ranked[:, 3]) + 1e-12)


def check_n_classes(n_classes: int, *, needed: int, owner: str, loss: str) -> None:
    """DataError unless the model has at least ``needed`` classes."""
    if n_classes < needed:
        raise DataError(
            MSG_FEW_CLASSES.format(owner=owner, needed=needed, loss=loss, n_classes=n_classes)
        )


def project_to_threat(
    x_adv: torch.Tensor,
    x: torch.Tensor,
    *,
    norm: Norm,
    eps: float,
    bounds: tuple[float, float],
) -> torch.Tensor:
    """Project ``x_adv`` onto the ``norm`` ball of radius ``eps`` around ``x``, then clip it to
    ``bounds``. Clipping keeps every point of the ball inside it, so the result is in both."""
    delta = project(x_adv - x, norm=norm, eps=eps)
    return (x + delta).clamp_(bounds[0], bounds[1])


def linf_box(
    x: torch.Tensor, *, eps: float, bounds: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-coordinate box ``[max(x - eps, low), min(x + eps, high)]``: the intersection of
    the Linf ball and the valid range, so one ``clamp`` projects onto both."""
    return (x - eps).clamp_(min=bounds[0]), (x + eps).clamp_(max=bounds[1])


def random_start(
    rng: ExampleRandom,
    *,
    x: torch.Tensor,
    indices: torch.Tensor,
    step: int,
    norm: Norm,
    eps: float,
    bounds: tuple[float, float],
) -> torch.Tensor:
    """``x`` plus a uniform random point of the ``norm`` ball of radius ``eps``, clipped to
    ``bounds``; the draw is keyed by ``(indices, step)``."""
    delta = rng.ball(indices=indices, step=step, like=x, norm=norm, eps=eps)
    return (x + delta).clamp_(bounds[0], bounds[1])
