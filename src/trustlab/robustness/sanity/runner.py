"""Run the sanity checks over a model and an evaluation: :func:`run_sanity_checks`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from trustlab.core.checks import check_batch_size, model_device_and_dtype
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import Bounds, Enum, Integer, Optional, Satisfies, Seed, check_param
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike
from trustlab.robustness._inputs import check_in_bounds, inputs_and_labels
from trustlab.robustness._params import AT_LEAST_ONE, POSITIVE
from trustlab.robustness.norms import Norm
from trustlab.robustness.sanity.checks import CHECKS
from trustlab.robustness.sanity.context import SanityContext, WhiteBoxResult
from trustlab.robustness.sanity.report import SanityReport

__all__ = ["MSG_RESULTS_LENGTH", "run_sanity_checks"]

OWNER = "run_sanity_checks"

MSG_RESULTS_LENGTH = (
    "The attack result {name!r} covers {got} examples but x holds {expected}; pass results "
    "computed on the same x (in the same order) as the sanity checks."
)

_NORM = Enum(Norm, allowed=(Norm.LINF, Norm.L2, Norm.L1))
_COUNT = Integer(low=0)


def _factors(value: object) -> list[float]:
    """A non-empty sequence of finite numbers > 0, sorted, without repeats."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(value)
    try:
        return sorted(
            {check_param(item, POSITIVE, name="eps_factors", owner=OWNER) for item in value}
        )
    except ConfigurationError:
        raise ValueError(value) from None


def _named_results(value: object) -> list[tuple[str, WhiteBoxResult]]:
    """A mapping or sequence of attack results as ``(name, result)`` pairs."""
    if isinstance(value, Mapping):
        named = [(str(name), result) for name, result in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        named = [(str(i), result) for i, result in enumerate(value)]
    else:
        raise TypeError(value)
    if not all(isinstance(result, WhiteBoxResult) for _, result in named):
        raise TypeError(value)
    return named


_EPS_FACTORS = Satisfies(_factors, "a non-empty sequence of floats > 0")
_RESULTS = Optional(
    Satisfies(
        _named_results,
        "a mapping of names to AttackResult or AutoAttackResult, or a sequence of them",
    )
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
    whole input range. See :mod:`trustlab.robustness.sanity.checks` for the cost of each check.

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
    threat: Norm = check_param(norm, _NORM, name="norm", owner=OWNER)
    eps = check_param(eps, POSITIVE, name="eps", owner=OWNER)
    bounds = check_param(bounds, Bounds(), name="bounds", owner=OWNER)
    seed = check_param(seed, Seed, name="seed", owner=OWNER)
    n_examples = check_param(n_examples, AT_LEAST_ONE, name="n_examples", owner=OWNER)
    pgd_steps = check_param(pgd_steps, AT_LEAST_ONE, name="pgd_steps", owner=OWNER)
    square_queries = check_param(square_queries, _COUNT, name="square_queries", owner=OWNER)
    n_noise = check_param(n_noise, _COUNT, name="n_noise", owner=OWNER)
    batch_size = check_batch_size(batch_size, owner=OWNER)
    factors = check_param(eps_factors, _EPS_FACTORS, name="eps_factors", owner=OWNER)
    x_all, y_all = inputs_and_labels(x, y)
    check_in_bounds(x_all, bounds)
    n = int(x_all.shape[0])
    named = check_param(attack_results, _RESULTS, name="attack_results", owner=OWNER) or []
    for name, result in named:
        if result.n_examples != n:
            raise DataError(MSG_RESULTS_LENGTH.format(name=name, got=result.n_examples, expected=n))

    generator = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(n, generator=generator)[: min(n_examples, n)].sort().values
    device, dtype = model_device_and_dtype(model)
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    with model_mode(model, training=False):
        context = SanityContext.create(
            model=model,
            x=x_all[chosen].to(dtype),
            y=y_all[chosen],
            indices=chosen,
            modules_in_training=training,
            results=[result for _, result in named],
            norm=threat,
            eps=eps,
            bounds=bounds,
            seed=seed,
            eps_factors=factors,
            pgd_steps=pgd_steps,
            square_queries=square_queries,
            n_noise=n_noise,
            device=device,
            batch_size=batch_size,
        )
        flags = tuple(check.run(context) for check in CHECKS)
    return SanityReport(
        flags=flags,
        n_examples=int(chosen.shape[0]),
        indices=tuple(int(i) for i in chosen),
        forwards=context.counted.forwards + context.attack_forwards,
        backwards=context.counted.backwards + context.attack_backwards,
    )
