"""The sanity checks, one class per flag, each reading the shared :class:`SanityContext`.

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
The checks run in the order of :data:`CHECKS`; the white-box attacks they compare against are
run once, by the context, when the first check needs them.
"""

from __future__ import annotations

import abc
import itertools
import math
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from trustlab.robustness._random import ExampleRandom
from trustlab.robustness.norms import Norm, expand_rows, per_example_norm
from trustlab.robustness.sanity.context import SanityContext
from trustlab.robustness.sanity.report import SanityFlag, make_flag
from trustlab.robustness.square import Square

__all__ = [
    "CHECKS",
    "FLAG_NAMES",
    "BlackBoxCheck",
    "DeterministicCheck",
    "EpsMonotoneCheck",
    "EvalModeCheck",
    "GradientsCheck",
    "LargeEpsCheck",
    "LogitsCheck",
    "SanityCheck",
]

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


class SanityCheck(abc.ABC):
    """One check: its flag's ``name`` and :meth:`run` on the shared context."""

    name: ClassVar[str]

    @abc.abstractmethod
    def run(self, context: SanityContext) -> SanityFlag:
        """Run the check (the model is in eval mode) and return its flag."""


class EvalModeCheck(SanityCheck):
    """Fails when a submodule of the model was handed over in training mode."""

    name: ClassVar[str] = "eval_mode"

    def run(self, context: SanityContext) -> SanityFlag:
        training = context.modules_in_training
        return make_flag(
            self.name,
            passed=not training,
            value=float(len(training)),
            detail=", ".join(training[:5]) + (", ..." if len(training) > 5 else ""),
            modules_in_training_mode=training[:20],
        )


class DeterministicCheck(SanityCheck):
    """Fails when two forward passes of the same inputs differ."""

    name: ClassVar[str] = "deterministic"

    def run(self, context: SanityContext) -> SanityFlag:
        gap = float((context.logits - context.logits_again).abs().max())
        scale = max(1.0, float(context.logits.abs().max()))
        return make_flag(self.name, passed=gap <= DETERMINISM_TOLERANCE * scale, value=gap)


class LogitsCheck(SanityCheck):
    """Fails when the outputs look like probabilities (in [0, 1], rows summing to 1)."""

    name: ClassVar[str] = "logits"

    def run(self, context: SanityContext) -> SanityFlag:
        logits = context.logits
        in_unit = ((logits >= 0) & (logits <= 1)).all(dim=1)
        sums_to_one = (logits.sum(dim=1) - 1).abs() <= PROBABILITY_TOLERANCE
        share = float((in_unit & sums_to_one).float().mean())
        return make_flag(self.name, passed=share <= PROBABILITY_SHARE, value=share)


class GradientsCheck(SanityCheck):
    """Fails when too many inputs have an all-zero, NaN or infinite input gradient."""

    name: ClassVar[str] = "gradients"

    def run(self, context: SanityContext) -> SanityFlag:
        x, y, batch_size = context.x, context.y, context.batch_size
        zero = nan = 0
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(context.device).requires_grad_(True)
            yb = y[start : start + batch_size].to(context.device)
            with torch.enable_grad():
                loss = F.cross_entropy(context.counted(xb), yb, reduction="sum")
                (grad,) = torch.autograd.grad(loss, xb)
            rows = grad.detach().reshape(grad.shape[0], -1)
            finite = torch.isfinite(rows).all(dim=1)
            nan += int((~finite).sum())
            zero += int((finite & (rows == 0).all(dim=1)).sum())
        share = (zero + nan) / x.shape[0]
        return make_flag(
            self.name,
            passed=share <= MAX_BAD_GRADIENT_SHARE,
            value=share,
            zero_gradients=zero,
            non_finite_gradients=nan,
        )


class BlackBoxCheck(SanityCheck):
    """Fails when Square or random noise does better than the white-box attacks."""

    name: ClassVar[str] = "black_box"

    def run(self, context: SanityContext) -> SanityFlag:
        white = context.white_fooled()
        clean_correct = context.clean_correct
        square_fooled, ran_square = self._square(context)
        noise_fooled = self._noise(context)
        beaten = clean_correct & ~white & (square_fooled | noise_fooled)
        n_correct = max(int(clean_correct.sum()), 1)
        share = int(beaten.sum()) / n_correct
        white_rate = float((clean_correct & white).sum()) / n_correct
        black_rate = float((clean_correct & (square_fooled | noise_fooled)).sum()) / n_correct
        # A short white-box attack can miss an odd example a black-box one finds; what
        # signals masking is the black box doing better overall, or beating it on several.
        passed = black_rate <= white_rate and (
            share <= MAX_BLACK_BOX_SHARE or int(beaten.sum()) <= 1
        )
        return make_flag(
            self.name,
            passed=passed,
            value=share,
            white_box_success=white_rate,
            black_box_success=black_rate,
            square_success=(
                float((clean_correct & square_fooled).sum()) / n_correct if ran_square else None
            ),
            noise_success=float((clean_correct & noise_fooled).sum()) / n_correct,
            examples_beaten=[int(context.indices[i]) for i in beaten.nonzero().squeeze(1)],
        )

    @staticmethod
    def _square(context: SanityContext) -> tuple[torch.Tensor, bool]:
        """Which examples Square fooled, and whether it ran (image inputs, Linf or L2)."""
        fooled = torch.zeros_like(context.clean_correct)
        ran = context.square_queries > 0 and context.norm in Square.norms and context.x.dim() == 4
        if ran:
            result = Square(
                norm=context.norm,
                eps=context.eps,
                n_queries=context.square_queries,
                bounds=context.bounds,
                seed=context.seed,
            ).generate(
                model=context.model,
                x=context.x,
                y=context.y,
                batch_size=context.batch_size,
                indices=context.indices,
            )
            context.spend(result)
            fooled = ~result.adv_correct
        return fooled, ran

    @staticmethod
    def _noise(context: SanityContext) -> torch.Tensor:
        """Which examples one of ``n_noise`` random perturbations of size ``eps`` fooled."""
        fooled = torch.zeros_like(context.clean_correct)
        rng = ExampleRandom(seed=context.seed)
        low, high = context.bounds
        for draw in range(context.n_noise):
            delta = _noise(rng, context.indices, draw, context.x, context.norm, context.eps)
            noisy = (context.x + delta).clamp(low, high)
            fooled |= context.forward(noisy).argmax(dim=1) != context.y
        return fooled


class EpsMonotoneCheck(SanityCheck):
    """Fails when PGD's robust accuracy rises as eps grows."""

    name: ClassVar[str] = "eps_monotone"

    def run(self, context: SanityContext) -> SanityFlag:
        fooled, clean_correct = context.grid_fooled(), context.clean_correct
        accuracies = [
            float((clean_correct & ~fooled[radius]).float().mean()) for radius in context.grid
        ]
        rises = [later - earlier for earlier, later in itertools.pairwise(accuracies)]
        worst = max([0.0, *rises])
        tolerance = MONOTONE_TOLERANCE + 1.0 / max(int(clean_correct.shape[0]), 1)
        return make_flag(
            self.name,
            passed=worst <= tolerance,
            value=worst,
            eps=context.grid,
            robust_accuracy=accuracies,
        )


class LargeEpsCheck(SanityCheck):
    """Fails when PGD at an eps spanning the whole input range leaves accuracy above chance."""

    name: ClassVar[str] = "large_eps"

    def run(self, context: SanityContext) -> SanityFlag:
        huge = _spanning_eps(context.norm, context.x, context.bounds)
        result = context.pgd(huge)
        accuracy = float((context.clean_correct & result.adv_correct).float().mean())
        chance = 1.0 / context.n_classes
        return make_flag(
            self.name,
            passed=accuracy <= chance + CHANCE_MARGIN,
            value=accuracy,
            eps=huge,
            chance=chance,
        )


#: The checks :func:`~trustlab.robustness.sanity.run_sanity_checks` runs, in order.
CHECKS: tuple[SanityCheck, ...] = (
    EvalModeCheck(),
    DeterministicCheck(),
    LogitsCheck(),
    GradientsCheck(),
    BlackBoxCheck(),
    EpsMonotoneCheck(),
    LargeEpsCheck(),
)

#: The flags of a report, in order.
FLAG_NAMES = tuple(check.name for check in CHECKS)


def _noise(
    rng: ExampleRandom, keys: torch.Tensor, draw: int, like: torch.Tensor, norm: Norm, eps: float
) -> torch.Tensor:
    """Random noise of size ``eps``: a random corner of the Linf ball, else a random direction."""
    shape = tuple(like.shape[1:])
    if norm is Norm.LINF:
        u = rng.uniform(indices=keys, step=draw, shape=shape, dtype=like.dtype, device=like.device)
        return torch.where(u < 0.5, -eps, eps).to(like.dtype)
    direction = rng.normal(
        indices=keys, step=draw, shape=shape, dtype=like.dtype, device=like.device
    )
    size = per_example_norm(direction, norm).clamp_min(1e-12)
    return direction / expand_rows(size, like) * eps


def _spanning_eps(norm: Norm, x: torch.Tensor, bounds: tuple[float, float]) -> float:
    """A radius whose ball holds the whole input box around any point of it."""
    width = bounds[1] - bounds[0]
    dim = int(np.prod(x.shape[1:]))
    if norm is Norm.LINF:
        return width
    if norm is Norm.L2:
        return width * math.sqrt(dim)
    return width * dim
