"""Threat models and the geometry every attack shares: norms, projections, steepest directions.

A threat model is a :class:`Norm` and a radius ``eps``; the helpers here measure a batch's
perturbations per example, project them back onto the ball, and turn a gradient into the
steepest-ascent direction of unit norm.
"""

from __future__ import annotations

import enum

import torch

from trustlab.core.params import Enum, check_param
from trustlab.robustness._deprecation import warn_deprecated

MSG_PARSE_DEPRECATED = (
    "Norm.parse is deprecated in 0.2 and will be removed in 0.4; declare the 'norm' parameter "
    "in _parameter_constraints, or call trustlab.core.params.check_param(value, "
    "Enum(Norm, allowed=...), name='norm', owner=...)."
)


class Norm(str, enum.Enum):
    """Threat models: the norm that bounds a perturbation."""

    LINF = "Linf"
    L2 = "L2"
    L1 = "L1"

    @classmethod
    def parse(cls, value: Norm | str, *, owner: str, allowed: tuple[Norm, ...]) -> Norm:
        """Deprecated: ``value`` as a :class:`Norm` among ``allowed``, checked like any
        declared ``norm`` parameter."""
        warn_deprecated(MSG_PARSE_DEPRECATED)
        norm: Norm = check_param(value, Enum(cls, allowed=allowed), name="norm", owner=owner)
        return norm


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


def expand_rows(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-example ``values`` (n,) as (n, 1, ..., 1), to broadcast against ``like`` (n, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def project(delta: torch.Tensor, *, norm: Norm, eps: float | torch.Tensor) -> torch.Tensor:
    """Project each example's perturbation onto the ``norm`` ball of radius ``eps``.

    Linf clamps; L2 rescales; L1 uses the exact Euclidean projection onto the L1 ball
    (Duchi et al., 2008). ``eps`` may be a float or a per-example tensor of shape (n,).
    """
    eps_t = torch.as_tensor(eps, dtype=delta.dtype, device=delta.device)
    if eps_t.dim() == 0:
        eps_t = eps_t.expand(delta.shape[0])
    if norm is Norm.LINF:
        bound = expand_rows(eps_t, delta)
        return torch.maximum(torch.minimum(delta, bound), -bound)
    if norm is Norm.L2:
        norms = flat(delta).norm(p=2, dim=1).clamp_min(1e-12)
        factor = torch.clamp(eps_t / norms, max=1.0)
        return delta * expand_rows(factor, delta)
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
        return grad / expand_rows(norms, grad)
    norms = flat(grad).abs().sum(dim=1).clamp_min(1e-12)
    return grad / expand_rows(norms, grad)


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
