"""Sanity checks that run beside every robustness evaluation and say when not to trust it.

A robust accuracy is only as good as the attacks behind it. Models that mask or obfuscate
their gradients (Athalye et al., 2018) look robust to gradient attacks while they are not;
randomised models need expectation over transformation (EOT); models that return
probabilities saturate the attacks' losses. :func:`run_sanity_checks` looks for the symptoms
that Carlini et al. (2019, "On evaluating adversarial robustness") and Croce et al. (2020,
RobustBench) list, on a small subsample, and returns a :class:`SanityReport` of flags, each
with what a failure suggests.

The checks and their cost, per example of the subsample (``n_examples``, 64 by default):

============  ===============================================================  ===============
flag          fails when                                                        cost
============  ===============================================================  ===============
eval_mode     a submodule of the model was handed over in training mode        none
deterministic two forward passes of the same inputs differ (in eval mode)     2 forwards
logits        the outputs look like probabilities (in [0, 1], rows sum to 1)  (shared)
gradients     too many inputs have an all-zero, NaN or infinite gradient of    1 forward and
              the cross-entropy                                                1 backward
black_box     Square or random noise does better than the white-box attacks  up to
              (more examples broken, or over 5 % of those they missed)         ``square_queries
                                                                               + n_noise``
eps_monotone  PGD's robust accuracy rises as eps grows (``eps_factors``)      ``pgd_steps``
                                                                               per factor
large_eps     PGD at an eps that spans the whole input range leaves accuracy  ``pgd_steps``
              above chance
============  ===============================================================  ===============

(PGD passes are forward and backward; an example stops costing passes once it is broken.)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_batch_size,
    check_labels_in_range,
    check_logits,
    check_same_length,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.typing import ArrayLike
from trustlab.robustness.base import (
    AttackResult,
    CountingModel,
    ExampleRandom,
    Norm,
    check_bounds,
    check_int,
    check_positive,
    eval_mode,
    expand_rows,
    per_example_norm,
)
from trustlab.robustness.pgd import PGD
from trustlab.robustness.square import Square

__all__ = [
    "FLAG_NAMES",
    "SanityFlag",
    "SanityReport",
    "run_sanity_checks",
]

OWNER = "run_sanity_checks"


@runtime_checkable
class WhiteBoxResult(Protocol):
    """What ``attack_results`` may hold: an ``AttackResult``, an ``AutoAttackResult`` or any
    record with per-example ``adv_correct`` and ``n_examples``."""

    @property
    def adv_correct(self) -> torch.Tensor: ...

    @property
    def n_examples(self) -> int: ...


MSG_EPS_FACTORS = (
    "The 'eps_factors' parameter of run_sanity_checks must be a non-empty sequence of floats "
    "> 0. Got {value!r} instead."
)
MSG_RESULTS_TYPE = (
    "The 'attack_results' parameter of run_sanity_checks must be a mapping of names to "
    "AttackResult or AutoAttackResult, a sequence of them, or None. Got {value!r} instead."
)
MSG_RESULTS_LENGTH = (
    "The attack result {name!r} covers {got} examples but x holds {expected}; pass results "
    "computed on the same x (in the same order) as the sanity checks."
)
MSG_OUT_OF_RANGE = (
    "x holds values outside the valid input range {bounds}: example {index} has {value:.6g}. "
    "Scale inputs to the range or pass bounds=(low, high)."
)
MSG_NO_CLASSES = "The model returns {n_classes} logit(s) per example; it needs at least 2."

#: The flags of a report, in order.
FLAG_NAMES = (
    "eval_mode",
    "deterministic",
    "logits",
    "gradients",
    "black_box",
    "eps_monotone",
    "large_eps",
)

#: Two forward passes of the same inputs may differ by this much and count as identical.
DETERMINISM_TOLERANCE = 1e-5
#: Rows within this distance of summing to 1 (with entries in [0, 1]) look like probabilities.
PROBABILITY_TOLERANCE = 1e-3
#: The outputs look like probabilities when more than this share of rows does.
PROBABILITY_SHARE = 0.5
#: Most inputs that may have an all-zero, NaN or infinite gradient.
MAX_BAD_GRADIENT_SHARE = 0.05
#: Largest share of examples that black-box attacks or noise may break where the white-box
#: attacks failed (one such example is always tolerated), if they do no better overall.
MAX_BLACK_BOX_SHARE = 0.05
#: Largest rise in robust accuracy between consecutive eps of the grid that is not flagged
#: (on top of one example of the subsample, to absorb the noise of a short attack).
MONOTONE_TOLERANCE = 0.02
#: At an eps spanning the whole input range, robust accuracy may exceed chance by this much.
CHANCE_MARGIN = 0.05

EXPLANATIONS: dict[str, tuple[str, str]] = {
    "eval_mode": (
        "Every module was in eval mode when the model was handed over.",
        "Some modules were in training mode ({detail}). Attacks run the model in eval mode, "
        "so the numbers describe model.eval(); if the model is used in training mode (dropout "
        "active, batch-norm batch statistics) its outputs are random: call model.eval(), or "
        "treat it as a randomized model and evaluate with EOT.",
    ),
    "deterministic": (
        "Two forward passes of the same inputs gave the same logits.",
        "Two forward passes of the same inputs differ by up to {value:.3g}: the model is "
        "randomized at inference. One gradient describes one random draw, so gradient attacks "
        "underestimate the threat: evaluate with EOT (average gradients over many draws, e.g. "
        "APGD with eot_iter > 1) and report the randomness.",
    ),
    "logits": (
        "The outputs look like logits.",
        "{value:.0%} of the output rows lie in [0, 1] and sum to 1: the model returns "
        "probabilities. Softmax outputs saturate the attacks' losses and flatten their "
        "gradients (a form of gradient masking); pass the logits (the input of the softmax).",
    ),
    "gradients": (
        "Input gradients of the cross-entropy are finite and non-zero.",
        "{value:.0%} of the inputs have an all-zero, NaN or infinite gradient of the "
        "cross-entropy: the gradients are masked or shattered (e.g. by quantisation, "
        "thresholding or a non-differentiable preprocessing step). Gradient attacks cannot be "
        "trusted: use black-box attacks (Square) and BPDA for the non-differentiable part.",
    ),
    "black_box": (
        "Black-box attacks and random noise did no better than the white-box attacks.",
        "A black-box attack or random noise did better than the white-box attacks, breaking "
        "{value:.0%} of the examples they left standing. A white-box attack should not do "
        "worse than one that sees less: this is the classic sign of gradient masking. Report the "
        "black-box numbers too and use stronger or adaptive attacks.",
    ),
    "eps_monotone": (
        "PGD's robust accuracy falls (or stays) as eps grows.",
        "PGD's robust accuracy rises by up to {value:.0%} as eps grows: a larger ball "
        "contains the smaller one, so a working attack can only do better. The attack's "
        "optimisation fails, which suggests gradient masking.",
    ),
    "large_eps": (
        "At an eps spanning the whole input range, PGD brings accuracy down to chance.",
        "At an eps spanning the whole input range, where any input is reachable, PGD leaves "
        "a robust accuracy of {value:.0%}, above chance: the attack cannot even reach an "
        "unconstrained adversarial example, which points to gradient masking or a bug in the "
        "evaluation.",
    ),
}


@dataclass(frozen=True)
class SanityFlag:
    """The outcome of one sanity check.

    Attributes
    ----------
    name : str
        One of :data:`FLAG_NAMES`.
    passed : bool
        Whether the check found nothing suspicious.
    value : float
        What was measured (a share, a difference; see each check).
    explanation : str
        What the outcome means; for a failed check, what it suggests and what to do.
    details : dict
        Further numbers, JSON-ready (e.g. the robust accuracy at each eps of the grid).
    """

    name: str
    passed: bool
    value: float
    explanation: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "explanation": self.explanation,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class SanityReport:
    """The flags of :func:`run_sanity_checks` and what the checks cost.

    Attributes
    ----------
    flags : tuple of SanityFlag
        One per check, in the order of :data:`FLAG_NAMES`.
    n_examples : int
        The size of the subsample the checks ran on.
    indices : tuple of int
        The positions of the subsample in the ``x`` passed in.
    forwards, backwards : int
        Forward and backward passes spent, counted per example.
    """

    flags: tuple[SanityFlag, ...]
    n_examples: int
    indices: tuple[int, ...]
    forwards: int
    backwards: int

    @property
    def passed(self) -> bool:
        """Whether every check passed."""
        return all(flag.passed for flag in self.flags)

    @property
    def failed(self) -> list[str]:
        """The names of the failed checks."""
        return [flag.name for flag in self.flags if not flag.passed]

    def flag(self, name: str) -> SanityFlag:
        """The flag called ``name`` (KeyError if there is none)."""
        for flag in self.flags:
            if flag.name == name:
                return flag
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "passed": self.passed,
            "failed": self.failed,
            "n_examples": self.n_examples,
            "forwards": self.forwards,
            "backwards": self.backwards,
            "flags": [flag.to_dict() for flag in self.flags],
        }


def _flag(name: str, *, passed: bool, value: float, detail: str = "", **details: Any) -> SanityFlag:
    good, bad = EXPLANATIONS[name]
    text = good if passed else bad.format(value=value, detail=detail)
    return SanityFlag(
        name=name, passed=passed, value=float(value), explanation=text, details=details
    )


def run_sanity_checks(
    *,
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike,
    norm: Norm | str,
    eps: float,
    attack_results: Mapping[str, WhiteBoxResult] | Sequence[WhiteBoxResult] | None = None,
    bounds: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    n_examples: int = 64,
    eps_factors: Sequence[float] = (0.25, 0.5, 1.0, 2.0, 4.0),
    pgd_steps: int = 10,
    square_queries: int = 500,
    n_noise: int = 16,
    batch_size: int = 256,
) -> SanityReport:
    """Check a model and an evaluation for the symptoms of gradient masking and randomness.

    The checks follow Carlini et al., "On evaluating adversarial robustness" (2019), and
    Athalye et al., "Obfuscated gradients give a false sense of security" (ICML 2018): a
    deterministic forward pass in eval mode, logits rather than probabilities, finite and
    non-zero input gradients, no black-box attack or random noise beating the white-box
    attacks, robust accuracy falling with eps and reaching chance when the ball spans the
    whole input range. See the module docstring for the cost of each check.

    Threat model: the same as the evaluation's (``norm``, ``eps``, ``bounds``).

    Parameters
    ----------
    model : torch.nn.Module
        The classifier, mapping (b, ...) to logits (b, k); its modes are restored afterwards.
    x : torch.Tensor or ndarray, shape (n, ...)
        Inputs inside ``bounds`` (typically the evaluation's inputs).
    y : torch.Tensor or ndarray of int, shape (n,)
        Their labels.
    norm : {"Linf", "L2", "L1"}
        The threat model's norm.
    eps : float
        The evaluation's radius.
    attack_results : mapping or sequence of AttackResult or AutoAttackResult, optional
        The white-box attacks of the evaluation, run on the same ``x`` in the same order. An
        example counts as broken by them if any result misclassifies it (a cascade that
        includes Square is not purely white-box; the check then compares against it).
        Without them, a PGD of ``pgd_steps`` steps at ``eps`` stands in.
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range.
    seed : int, default=0
        Seeds the subsample and every random draw of the checks.
    n_examples : int, default=64
        Size of the random subsample of ``x`` the checks run on.
    eps_factors : sequence of float, default=(0.25, 0.5, 1, 2, 4)
        The eps grid of the monotonicity check, as multiples of ``eps``.
    pgd_steps : int, default=10
        Steps of the cheap PGD (evaluation mode, one random start) of the eps checks.
    square_queries : int, default=500
        Query budget of the black-box check's Square attack (0 skips it; Square runs only on
        image inputs (n, c, h, w) in Linf or L2).
    n_noise : int, default=16
        Random perturbations of size ``eps`` tried per example (0 skips them): random
        corners of the ball in Linf, random directions on its surface in L2 and L1.
    batch_size : int, default=256
        Examples per forward pass.

    Returns
    -------
    SanityReport
        One :class:`SanityFlag` per check, the subsample and the passes spent.

    Raises
    ------
    ConfigurationError
        For a bad parameter.
    DataError
        For bad inputs or labels, or attack results that do not cover ``x``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    >>> report = run_sanity_checks(model=model, x=x, y=y, norm="Linf", eps=0.1,
    ...                            square_queries=20, n_noise=2, pgd_steps=2)
    >>> [flag.name for flag in report.flags][:3]
    ['eval_mode', 'deterministic', 'logits']
    """
    threat = Norm.parse(norm, owner=OWNER, allowed=(Norm.LINF, Norm.L2, Norm.L1))
    eps = check_positive(eps, name="eps", owner=OWNER)
    low, high = check_bounds(bounds, owner=OWNER)
    seed = check_int(seed, name="seed", owner=OWNER, low=0)
    n_examples = check_int(n_examples, name="n_examples", owner=OWNER)
    pgd_steps = check_int(pgd_steps, name="pgd_steps", owner=OWNER)
    square_queries = check_int(square_queries, name="square_queries", owner=OWNER, low=0)
    n_noise = check_int(n_noise, name="n_noise", owner=OWNER, low=0)
    batch_size = check_batch_size(batch_size, owner=OWNER)
    factors = _check_factors(eps_factors)
    x_all = as_input_tensor(x)
    if not x_all.is_floating_point():
        x_all = x_all.float()
    y_all = as_label_tensor(y)
    check_same_length(first="x", n_first=x_all.shape[0], second="y", n_second=y_all.shape[0])
    _check_range(x_all, (low, high))
    results = _results_list(attack_results, n=int(x_all.shape[0]))

    n = int(x_all.shape[0])
    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(n, generator=generator)[: min(n_examples, n)].sort().values
    device, dtype = model_device_and_dtype(model)
    xs = x_all[chosen].to(dtype)
    ys = y_all[chosen]

    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    flags = [
        _flag(
            "eval_mode",
            passed=not training,
            value=float(len(training)),
            detail=", ".join(training[:5]) + (", ..." if len(training) > 5 else ""),
            modules_in_training_mode=training[:20],
        )
    ]
    counted = CountingModel(model)
    spent = _Spent()
    with eval_mode(model):
        first = _logits(counted, xs, device=device, batch_size=batch_size)
        second = _logits(counted, xs, device=device, batch_size=batch_size)
        n_classes = int(first.shape[1])
        if n_classes < 2:
            raise DataError(MSG_NO_CLASSES.format(n_classes=n_classes))
        check_labels_in_range(ys, n_classes=n_classes)
        gap = float((first - second).abs().max())
        scale = max(1.0, float(first.abs().max()))
        flags.append(_flag("deterministic", passed=gap <= DETERMINISM_TOLERANCE * scale, value=gap))
        flags.append(_probability_flag(first))
        clean_correct = first.argmax(dim=1) == ys
        flags.append(_gradient_flag(counted, xs, ys, device=device, batch_size=batch_size))

        def cheap_pgd(radius: float) -> AttackResult:
            attack = PGD(
                norm=threat,
                eps=radius,
                steps=pgd_steps,
                early_stop=True,
                bounds=(low, high),
                seed=seed,
            )
            result = attack.generate(model=model, x=xs, y=ys, batch_size=batch_size, indices=chosen)
            spent.add(result)
            return result

        grid = [eps * factor for factor in factors]
        grid_fooled: dict[float, torch.Tensor] = {}
        for radius in grid:
            grid_fooled[radius] = ~cheap_pgd(radius).adv_correct
        if results:
            white = torch.zeros_like(clean_correct)
            for result in results:
                white |= ~result.adv_correct[chosen]
        elif eps in grid_fooled:
            white = grid_fooled[eps]
        else:
            white = ~cheap_pgd(eps).adv_correct
        flags.append(
            _black_box_flag(
                model=model,
                counted=counted,
                xs=xs,
                ys=ys,
                chosen=chosen,
                clean_correct=clean_correct,
                white=white,
                threat=threat,
                eps=eps,
                bounds=(low, high),
                seed=seed,
                square_queries=square_queries,
                n_noise=n_noise,
                device=device,
                batch_size=batch_size,
                spent=spent,
            )
        )
        flags.append(_monotone_flag(grid, grid_fooled, clean_correct))
        huge = _spanning_eps(threat, xs, (low, high))
        result = cheap_pgd(huge)
        accuracy = float((clean_correct & result.adv_correct).float().mean())
        chance = 1.0 / n_classes
        flags.append(
            _flag(
                "large_eps",
                passed=accuracy <= chance + CHANCE_MARGIN,
                value=accuracy,
                eps=huge,
                chance=chance,
            )
        )
    return SanityReport(
        flags=tuple(flags),
        n_examples=int(chosen.shape[0]),
        indices=tuple(int(i) for i in chosen),
        forwards=counted.forwards + spent.forwards,
        backwards=counted.backwards + spent.backwards,
    )


@dataclass
class _Spent:
    forwards: int = 0
    backwards: int = 0

    def add(self, result: AttackResult) -> None:
        self.forwards += result.forwards
        self.backwards += result.backwards


def _check_factors(value: object) -> list[float]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ConfigurationError(MSG_EPS_FACTORS.format(value=value))
    factors = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ConfigurationError(MSG_EPS_FACTORS.format(value=value))
        if not math.isfinite(float(item)) or float(item) <= 0:
            raise ConfigurationError(MSG_EPS_FACTORS.format(value=value))
        factors.append(float(item))
    return sorted(set(factors))


def _check_range(x: torch.Tensor, bounds: tuple[float, float]) -> None:
    rows = x.reshape(x.shape[0], -1)
    low, high = bounds
    bad = (rows.amin(dim=1) < low) | (rows.amax(dim=1) > high)
    if bool(bad.any()):
        index = int(torch.argmax(bad.to(torch.uint8)))
        row = rows[index]
        value = float(row.min()) if float(row.min()) < low else float(row.max())
        raise DataError(MSG_OUT_OF_RANGE.format(bounds=bounds, index=index, value=value))


def _results_list(
    attack_results: Mapping[str, WhiteBoxResult] | Sequence[WhiteBoxResult] | None, *, n: int
) -> list[WhiteBoxResult]:
    if attack_results is None:
        return []
    if isinstance(attack_results, Mapping):
        named = list(attack_results.items())
    elif isinstance(attack_results, Sequence) and not isinstance(attack_results, (str, bytes)):
        named = [(str(i), result) for i, result in enumerate(attack_results)]
    else:
        raise ConfigurationError(MSG_RESULTS_TYPE.format(value=attack_results))
    for name, result in named:
        if not isinstance(result, WhiteBoxResult):
            raise ConfigurationError(MSG_RESULTS_TYPE.format(value=attack_results))
        if result.n_examples != n:
            raise DataError(MSG_RESULTS_LENGTH.format(name=name, got=result.n_examples, expected=n))
    return [result for _, result in named]


def _logits(
    model: CountingModel, x: torch.Tensor, *, device: torch.device, batch_size: int
) -> torch.Tensor:
    outputs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            outputs.append(model(x[start : start + batch_size].to(device)).detach().cpu())
    return check_logits(torch.cat(outputs), n_examples=int(x.shape[0]))


def _probability_flag(logits: torch.Tensor) -> SanityFlag:
    in_unit = ((logits >= 0) & (logits <= 1)).all(dim=1)
    sums_to_one = (logits.sum(dim=1) - 1).abs() <= PROBABILITY_TOLERANCE
    share = float((in_unit & sums_to_one).float().mean())
    return _flag("logits", passed=share <= PROBABILITY_SHARE, value=share)


def _gradient_flag(
    model: CountingModel,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    device: torch.device,
    batch_size: int,
) -> SanityFlag:
    zero = nan = 0
    for start in range(0, x.shape[0], batch_size):
        xb = x[start : start + batch_size].to(device).requires_grad_(True)
        yb = y[start : start + batch_size].to(device)
        with torch.enable_grad():
            loss = F.cross_entropy(model(xb), yb, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xb)
        rows = grad.detach().reshape(grad.shape[0], -1)
        finite = torch.isfinite(rows).all(dim=1)
        nan += int((~finite).sum())
        zero += int((finite & (rows == 0).all(dim=1)).sum())
    share = (zero + nan) / x.shape[0]
    return _flag(
        "gradients",
        passed=share <= MAX_BAD_GRADIENT_SHARE,
        value=share,
        zero_gradients=zero,
        non_finite_gradients=nan,
    )


def _black_box_flag(
    *,
    model: nn.Module,
    counted: CountingModel,
    xs: torch.Tensor,
    ys: torch.Tensor,
    chosen: torch.Tensor,
    clean_correct: torch.Tensor,
    white: torch.Tensor,
    threat: Norm,
    eps: float,
    bounds: tuple[float, float],
    seed: int,
    square_queries: int,
    n_noise: int,
    device: torch.device,
    batch_size: int,
    spent: _Spent,
) -> SanityFlag:
    square_fooled = torch.zeros_like(clean_correct)
    ran_square = square_queries > 0 and threat in Square.norms and xs.dim() == 4
    if ran_square:
        square = Square(
            norm=threat, eps=eps, n_queries=square_queries, bounds=bounds, seed=seed
        ).generate(model=model, x=xs, y=ys, batch_size=batch_size, indices=chosen)
        spent.add(square)
        square_fooled = ~square.adv_correct
    noise_fooled = torch.zeros_like(clean_correct)
    rng = ExampleRandom(seed=seed)
    low, high = bounds
    for draw in range(n_noise):
        delta = _noise(rng, chosen, draw, xs, threat, eps)
        noisy = (xs + delta).clamp(low, high)
        noise_fooled |= (
            _logits(counted, noisy, device=device, batch_size=batch_size).argmax(dim=1) != ys
        )
    beaten = clean_correct & ~white & (square_fooled | noise_fooled)
    n_correct = max(int(clean_correct.sum()), 1)
    share = int(beaten.sum()) / n_correct
    white_rate = float((clean_correct & white).sum()) / n_correct
    black_rate = float((clean_correct & (square_fooled | noise_fooled)).sum()) / n_correct
    # A short white-box attack can miss an odd example a black-box one finds; what signals
    # masking is the black box doing better overall, or beating it on several examples.
    passed = black_rate <= white_rate and (share <= MAX_BLACK_BOX_SHARE or int(beaten.sum()) <= 1)
    return _flag(
        "black_box",
        passed=passed,
        value=share,
        white_box_success=white_rate,
        black_box_success=black_rate,
        square_success=(
            float((clean_correct & square_fooled).sum()) / n_correct if ran_square else None
        ),
        noise_success=float((clean_correct & noise_fooled).sum()) / n_correct,
        examples_beaten=[int(chosen[i]) for i in beaten.nonzero().squeeze(1)],
    )


def _noise(
    rng: ExampleRandom, keys: torch.Tensor, draw: int, like: torch.Tensor, norm: Norm, eps: float
) -> torch.Tensor:
    """Random noise of size ``eps``: a random corner of the Linf ball, else a random direction."""
    shape = tuple(like.shape[1:])
    if norm is Norm.LINF:
        u = rng.uniform(indices=keys, step=draw, shape=shape, dtype=like.dtype)
        return torch.where(u < 0.5, -eps, eps).to(like.dtype)
    direction = rng.normal(indices=keys, step=draw, shape=shape, dtype=like.dtype)
    size = per_example_norm(direction, norm).clamp_min(1e-12)
    return direction / expand_rows(size, like) * eps


def _monotone_flag(
    grid: list[float], fooled: Mapping[float, torch.Tensor], clean_correct: torch.Tensor
) -> SanityFlag:
    accuracies = [float((clean_correct & ~fooled[radius]).float().mean()) for radius in grid]
    rises = [later - earlier for earlier, later in itertools.pairwise(accuracies)]
    worst = max([0.0, *rises])
    tolerance = MONOTONE_TOLERANCE + 1.0 / max(int(clean_correct.shape[0]), 1)
    return _flag(
        "eps_monotone",
        passed=worst <= tolerance,
        value=worst,
        eps=grid,
        robust_accuracy=accuracies,
    )


def _spanning_eps(norm: Norm, x: torch.Tensor, bounds: tuple[float, float]) -> float:
    """A radius whose ball holds the whole input box around any point of it."""
    width = bounds[1] - bounds[0]
    dim = int(np.prod(x.shape[1:]))
    if norm is Norm.LINF:
        return width
    if norm is Norm.L2:
        return width * math.sqrt(dim)
    return width * dim
