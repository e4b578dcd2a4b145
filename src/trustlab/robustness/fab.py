"""FAB: the fast adaptive boundary attack, untargeted (``"fab"``) and targeted (``"fab-t"``).

FAB (Croce & Hein, 2020) looks for the *smallest* adversarial perturbation. At every step it
linearises the classifier's decision boundary around the current point, projects both the
current point and the original input onto that hyperplane intersected with the valid input
box, and moves to a convex combination of the two projections (biased towards the original
point), extrapolated slightly past the boundary. Once a point is misclassified it steps back
towards the original input and goes on shrinking the perturbation.

With ``eps`` given (the evaluation setting of AutoAttack), an example counts as broken only if
the smallest perturbation found is within ``eps``; the clean input is returned otherwise.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from trustlab.core.params import Boolean, Constraint, Optional, Real, validate_params
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._params import AT_LEAST_ONE, POSITIVE, store_params
from trustlab.robustness._random import ExampleRandom
from trustlab.robustness._working import WorkingSet
from trustlab.robustness.base import Attack
from trustlab.robustness.norms import Norm, expand_rows, flat, per_example_norm
from trustlab.robustness.registry import register_attack

__all__ = ["FAB", "FABT", "project_onto_boundary"]

#: Radius of the random starts of restarts after the first when no ``eps`` is given
#: (the reference implementation's defaults).
DEFAULT_START_RADIUS = {Norm.LINF: 0.3, Norm.L2: 1.0, Norm.L1: 5.0}

# The logit gap given to the true class so that it is never picked as the closest boundary.
_EXCLUDED = 1e10
_TINY = 1e-12


# --------------------------------------------------------------------------------------------
# Projection onto a hyperplane intersected with a box


def _water_fill(
    weights: torch.Tensor, caps: torch.Tensor, need: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest ``lam >= 0`` with ``sum_i weights_i * min(lam, caps_i) == need``, per row.

    ``weights`` and ``caps`` are (n, d) and non-negative, ``need`` is (n,) and non-negative.
    The left side is a non-decreasing, piecewise-linear function of ``lam`` whose breakpoints
    are the caps; the root lies between two consecutive sorted caps. Returns ``lam`` and
    whether the row is feasible (``lam`` is ``inf`` where even ``lam = inf`` falls short).
    """
    caps_sorted, order = torch.sort(caps, dim=1)
    weights_sorted = weights.gather(1, order)
    filled = (weights_sorted * caps_sorted).cumsum(dim=1)
    filled_before = filled - weights_sorted * caps_sorted
    # Weight of the coordinates still below their cap, for lam between caps k-1 and k.
    still_free = weights_sorted.flip(1).cumsum(dim=1).flip(1)
    at_breakpoint = filled_before + caps_sorted * still_free
    short = (at_breakpoint < need[:, None]).sum(dim=1)
    feasible = short < caps.shape[1]
    index = short.clamp(max=caps.shape[1] - 1)[:, None]
    slope = still_free.gather(1, index).squeeze(1)
    lam = (need - filled_before.gather(1, index).squeeze(1)) / slope.clamp_min(_TINY)
    lam = torch.where(need <= 0, torch.zeros_like(lam), lam.clamp_min(0))
    lam = torch.where(feasible, lam, torch.full_like(lam, math.inf))
    return lam, feasible


def project_onto_boundary(
    points: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor,
    *,
    norm: Norm,
    bounds: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """The smallest step from each point onto the hyperplane ``<w, z> = b`` inside a box.

    Solves, for each row, ``min ||d||`` subject to ``<w, points + d> = b`` and
    ``low <= points + d <= high``, in the Linf, L2 or L1 norm, exactly. Where no point of the
    box lies on the hyperplane, it returns the step to the box corner that gets closest to it
    (the reference implementation does the same).

    Parameters
    ----------
    points : torch.Tensor, shape (n, d)
        Points inside the box.
    w : torch.Tensor, shape (n, d)
        Normals of the hyperplanes.
    b : torch.Tensor, shape (n,)
        Offsets of the hyperplanes.
    norm : Norm
        The norm of the step to minimise.
    bounds : (float, float), default=(0.0, 1.0)
        The box.

    Returns
    -------
    torch.Tensor, shape (n, d)
        The steps ``d``.

    Examples
    --------
    >>> d = project_onto_boundary(
    ...     torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 1.0]]), torch.tensor([1.5]),
    ...     norm=Norm.LINF,
    ... )
    >>> d
    tensor([[0.2500, 0.2500]])
    """
    low, high = bounds
    need = b - (w * points).sum(dim=1)
    flip = need < 0
    w = torch.where(flip[:, None], -w, w)
    need = need.abs()
    direction = torch.sign(w)
    # How far each coordinate can move in the direction that increases <w, z>.
    caps = torch.where(w > 0, high - points, points - low).clamp_min(0)
    caps = torch.where(w == 0, torch.zeros_like(caps), caps)
    magnitude = w.abs()
    if norm is Norm.LINF:
        lam, _ = _water_fill(magnitude, caps, need)
        return direction * torch.minimum(lam[:, None], caps)
    if norm is Norm.L2:
        ratio = torch.where(magnitude > 0, caps / magnitude.clamp_min(_TINY), caps)
        lam, _ = _water_fill(magnitude**2, ratio, need)
        return w * torch.minimum(lam[:, None], ratio)
    return _project_l1(magnitude, direction, caps, need)


def _project_l1(
    magnitude: torch.Tensor, direction: torch.Tensor, caps: torch.Tensor, need: torch.Tensor
) -> torch.Tensor:
    """L1: fill the coordinates in decreasing ``|w|`` order, each up to its cap."""
    order = torch.argsort(magnitude, dim=1, descending=True)
    magnitude_sorted = magnitude.gather(1, order)
    caps_sorted = caps.gather(1, order)
    gain = magnitude_sorted * caps_sorted
    gained = gain.cumsum(dim=1)
    gained_before = gained - gain
    # Coordinates whose whole capacity is used, then the one that takes the remainder.
    full = gained <= need[:, None]
    partial = (gained > need[:, None]) & (gained_before < need[:, None])
    remainder = (need[:, None] - gained_before) / magnitude_sorted.clamp_min(_TINY)
    step_sorted = torch.where(full, caps_sorted, torch.zeros_like(caps_sorted))
    step_sorted = torch.where(partial, torch.minimum(remainder, caps_sorted), step_sorted)
    step_sorted = torch.where(magnitude_sorted > 0, step_sorted, torch.zeros_like(step_sorted))
    step = torch.empty_like(step_sorted).scatter_(1, order, step_sorted)
    return direction * step


# --------------------------------------------------------------------------------------------
# The attack


class _FABBase(Attack):
    """Shared FAB machinery; :class:`FAB` and :class:`FABT` differ in the boundaries they use."""

    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2, Norm.L1)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "eps": Optional(POSITIVE),
        "steps": AT_LEAST_ONE,
        "restarts": AT_LEAST_ONE,
        "alpha_max": Real(low=0, high=1),
        "eta": Real(low=1),
        "beta": Real(low=0, high=1, closed="right"),
        "early_stop": Boolean(),
    }

    steps: int
    restarts: int
    alpha_max: float
    eta: float
    beta: float
    early_stop: bool

    def __init__(
        self,
        *,
        norm: Norm | str = Norm.LINF,
        eps: float | None = None,
        steps: int = 100,
        restarts: int = 1,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        early_stop: bool = True,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            steps=steps,
            restarts=restarts,
            alpha_max=alpha_max,
            eta=eta,
            beta=beta,
            early_stop=early_stop,
            bounds=bounds,
            seed=seed,
        )
        validate_params(self)

    # The boundaries to linearise: (logit gaps (m, k), their input gradients (m, k, ...)).
    def _boundaries(
        self,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def _attack_subset(
        self,
        *,
        model: CountingModel,
        x0: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        indices: torch.Tensor,
        start_radius: torch.Tensor | None,
        step: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One FAB run on ``x0``: the smallest adversarial points found and their norms.

        Norms are ``inf`` where no adversarial point was found. ``start_radius`` (m,) asks for
        a random start at half that radius (restarts after the first). With early stopping,
        an example leaves the working batch once a point within ``eps`` is found (at the
        working set's next check, see :mod:`trustlab.robustness._working`).
        """
        low, high = self.bounds
        m = x0.shape[0]
        ws = WorkingSet(m, device=x0.device)
        x0, y, indices = ws.gather(x0), ws.gather(y), ws.gather(indices)
        target = None if target is None else ws.gather(target)
        x1 = x0.clone()
        if start_radius is not None:
            radius = ws.gather(start_radius)
            x1 = (x0 + self._random_start(x0, indices, step, radius)).clamp(low, high)
        # The result buffers, one row per row of the first batch, and the batch's own results.
        best_out = x0.clone()
        norm_out = torch.full((x0.shape[0],), math.inf, device=x0.device, dtype=x0.dtype)
        best, best_norm = best_out.clone(), norm_out.clone()
        eps = self.eps
        stop_early = self.early_stop and eps is not None
        for _ in range(self.steps):
            with model.only(ws.counted):
                gaps, grads = self._boundaries(model, x1, y, target)
            with torch.no_grad():
                n_rows = x1.shape[0]
                grads_flat = grads.reshape(n_rows, grads.shape[1], -1)
                closest = (gaps.abs() / (_TINY + _dual_norm(grads_flat, self.norm))).argmin(dim=1)
                pick = torch.arange(n_rows, device=x0.device)
                w = grads_flat[pick, closest]
                x1_flat = flat(x1)
                b = (w * x1_flat).sum(dim=1) - gaps[pick, closest]
                moves = project_onto_boundary(
                    torch.cat((x1_flat, flat(x0))),
                    torch.cat((w, w)),
                    torch.cat((b, b)),
                    norm=self.norm,
                    bounds=self.bounds,
                )
                sizes = per_example_norm(moves, self.norm).clamp_min(1e-8)
                from_current, from_origin = sizes[:n_rows], sizes[n_rows:]
                alpha = (from_current / (from_current + from_origin)).clamp(0.0, self.alpha_max)
                alpha = expand_rows(alpha, x0)
                d1 = moves[:n_rows].reshape(x1.shape)
                d2 = moves[n_rows:].reshape(x1.shape)
                moved = ((x1 + self.eta * d1) * (1 - alpha) + (x0 + self.eta * d2) * alpha).clamp(
                    low, high
                )
                with model.only(ws.counted):
                    adversarial = model(moved).argmax(dim=1) != y
                size = per_example_norm(moved - x0, self.norm)
                better = adversarial & (size < best_norm) & ws.active
                best = torch.where(expand_rows(better, best), moved, best)
                best_norm = torch.where(better, size, best_norm)
                back = x0 + (moved - x0) * self.beta
                x1 = torch.where(expand_rows(adversarial, moved), back, moved)
                if not stop_early:
                    continue
                ws.retire(best_norm <= eps)  # type: ignore[operator]
                keep = ws.check((best_out, best), (norm_out, best_norm))
                if keep is not None:
                    x0, x1, y, best, best_norm = (t[keep] for t in (x0, x1, y, best, best_norm))
                    target = None if target is None else target[keep]
                if ws.empty:
                    break
        ws.scatter(best_out, best)
        ws.scatter(norm_out, best_norm)
        return best_out[:m], norm_out[:m]

    def _random_start(
        self, x0: torch.Tensor, indices: torch.Tensor, step: int, radius: torch.Tensor
    ) -> torch.Tensor:
        rng = ExampleRandom(seed=self.seed)
        shape = tuple(x0.shape[1:])
        if self.norm is Norm.LINF:
            noise = 2 * rng.uniform(
                indices=indices, step=step, shape=shape, device=x0.device, dtype=x0.dtype
            )
            noise = noise - 1
        else:
            noise = rng.normal(
                indices=indices, step=step, shape=shape, device=x0.device, dtype=x0.dtype
            )
        unit = noise / expand_rows(per_example_norm(noise, self.norm).clamp_min(_TINY), x0)
        return 0.5 * unit * expand_rows(radius, x0)

    def _run_all(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
        targets_per_round: list[torch.Tensor | None],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run every (target, restart) round on the examples still unbroken.

        Returns the adversarial examples and, per example, the index of the last round that
        attacked it (the one that broke it, if any; -1 where no round attacked it).
        """
        n = x.shape[0]
        result = x.detach().clone()
        best_norm = torch.full((n,), math.inf, device=x.device, dtype=x.dtype)
        last_round = torch.full((n,), -1, dtype=torch.int64, device=x.device)
        eps = self.eps
        default_radius = eps if eps is not None else DEFAULT_START_RADIUS[self.norm]
        for round_index, target in enumerate(targets_per_round):
            for restart in range(self.restarts):
                todo = clean_correct.clone()
                if eps is not None:
                    todo &= best_norm > eps
                rows = todo.nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                radius = None
                if restart > 0:
                    known = best_norm[rows]
                    radius = torch.where(
                        torch.isfinite(known), known, torch.full_like(known, default_radius)
                    )
                    if eps is not None:
                        radius = radius.clamp(max=eps)
                adv, size = self._attack_subset(
                    model=model,
                    x0=x[rows],
                    y=y[rows],
                    target=None if target is None else target[rows],
                    indices=indices[rows],
                    start_radius=radius,
                    step=round_index * self.restarts + restart,
                )
                last_round[rows] = round_index
                improved = size < best_norm[rows]
                if eps is not None:
                    improved &= size <= eps
                result[rows[improved]] = adv[improved]
                best_norm[rows[improved]] = size[improved]
        return result, last_round


def _dual_norm(grads: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The dual norm of each boundary's gradient, (m, k, d) -> (m, k)."""
    if norm is Norm.LINF:
        return grads.abs().sum(dim=-1)
    if norm is Norm.L2:
        return grads.norm(p=2, dim=-1)
    return grads.abs().amax(dim=-1)


@register_attack
class FAB(_FABBase):
    """Untargeted FAB (Croce & Hein, 2020), in the Linf, L2 and L1 threat models.

    Croce, F. and Hein, M. "Minimally distorted adversarial examples with a fast adaptive
    boundary attack", ICML 2020. Follows the reference implementation of AutoAttack
    (``fra31/auto-attack``, ``fab_base.py``): each step linearises the boundaries to every
    other class, takes the closest in the attack's norm, projects the current point and the
    original input onto it (intersected with the input box), and moves to
    ``(1 - alpha) (x + eta d1) + alpha (x_orig + eta d2)`` with
    ``alpha = min(|d1| / (|d1| + |d2|), alpha_max)``; a point that is misclassified is pulled
    back to ``x_orig + beta (x - x_orig)``. Restarts after the first start from a random point
    at half the radius (``eps``, or the smallest perturbation found so far).

    Threat model: white-box, gradients of every logit (one backward pass per class and
    step), Linf, L2 or L1, inputs in ``bounds``.

    Parameters
    ----------
    norm : {"Linf", "L2", "L1"}, default="Linf"
    eps : float, optional
        With ``eps``, an example counts as broken only if the perturbation found is at most
        ``eps`` (the clean input is returned otherwise). Without it, FAB is a minimum-norm
        attack and returns the smallest adversarial example it finds.
    steps : int, default=100
        Steps per run.
    restarts : int, default=1
        Runs per example; runs after the first start at a random point.
    alpha_max : float, default=0.1
        The largest weight of the step from the original input.
    eta : float, default=1.05
        Overshoot past the linearised boundary.
    beta : float, default=0.9
        Backward step towards the original input after a success.
    early_stop : bool, default=True
        With ``eps`` given, stop working on an example as soon as a perturbation within
        ``eps`` is found. Which examples are broken is the same either way; set ``False`` to
        keep shrinking the perturbation for all ``steps`` steps, as the reference does.
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range.
    seed : int, default=0
        Seed of the random starts (keyed by example, so batch size does not matter).

    Notes
    -----
    Only examples classified correctly before the attack are attacked. ``early_stop`` is a
    departure from the reference, which always runs ``steps`` steps; it changes only the
    size of the returned perturbation below ``eps``, never which examples are broken.

    Shapes
    ------
    ``x``: (n, ...) in ``bounds``; ``y``: (n,). The result holds ``x_adv`` of the same shape.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> attack = FAB(norm="L2", steps=10)
    >>> result = attack.generate(model=model, x=torch.rand(5, 4), y=torch.zeros(5).long())
    >>> result.x_adv.shape
    torch.Size([5, 4])
    """

    name: ClassVar[str] = "fab"

    def _boundaries(
        self,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        del target
        point = x.detach().clone().requires_grad_(True)
        logits = model(point)
        n_classes = logits.shape[1]
        grads = []
        for k in range(n_classes):
            (grad,) = torch.autograd.grad(logits[:, k].sum(), point, retain_graph=k < n_classes - 1)
            grads.append(grad)
        with torch.no_grad():
            gradients = torch.stack(grads, dim=1)
            rows = torch.arange(x.shape[0], device=x.device)
            gaps = logits.detach() - logits.detach()[rows, y][:, None]
            gradients = gradients - gradients[rows, y][:, None]
            gaps[rows, y] = _EXCLUDED
        return gaps, gradients

    def _perturb(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
    ) -> torch.Tensor:
        del targets
        result, _ = self._run_all(
            model=model,
            x=x,
            y=y,
            indices=indices,
            clean_correct=clean_correct,
            targets_per_round=[None],
        )
        return result


@register_attack
class FABT(_FABBase):
    """Targeted FAB (FAB-T) over the most likely other classes, as in AutoAttack.

    Croce, F. and Hein, M. "Minimally distorted adversarial examples with a fast adaptive
    boundary attack", ICML 2020; the targeted variant of "Reliable evaluation of adversarial
    robustness with an ensemble of diverse parameter-free attacks", ICML 2020. For each of
    the ``n_targets`` classes with the highest clean logits after the predicted one,
    in that order, FAB runs against the single boundary between the true class and that
    target, on the examples no earlier target broke. As in the reference, success means the
    point is misclassified (not necessarily as the target) within ``eps``. One forward and
    one backward pass per step, plus one forward pass to check the new point.

    AutoAttack's ``standard`` setting is ``n_targets=9, restarts=1, steps=100,
    alpha_max=0.1, eta=1.05, beta=0.9`` (the defaults).

    Threat model: white-box, Linf, L2 or L1, inputs in ``bounds``.

    Parameters
    ----------
    norm, eps, steps, restarts, alpha_max, eta, beta, early_stop, bounds, seed
        As for :class:`FAB`.
    n_targets : int, default=9
        How many target classes to try; capped at ``n_classes - 1`` for the model at hand.

    Notes
    -----
    The targets the attack picked are reported in ``AttackResult.targets``: per example, the
    target of the run that broke it, else the last target tried (as :class:`APGDT` does).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> attack = FABT(eps=0.5, steps=10, n_targets=2)
    >>> result = attack.generate(model=model, x=torch.rand(5, 4), y=torch.zeros(5).long())
    >>> result.targets.shape
    torch.Size([5])
    """

    name: ClassVar[str] = "fab-t"
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {"n_targets": AT_LEAST_ONE}

    def __init__(
        self,
        *,
        norm: Norm | str = Norm.LINF,
        eps: float | None = None,
        steps: int = 100,
        restarts: int = 1,
        n_targets: int = 9,
        alpha_max: float = 0.1,
        eta: float = 1.05,
        beta: float = 0.9,
        early_stop: bool = True,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        self.n_targets = n_targets
        super().__init__(
            norm=norm,
            eps=eps,
            steps=steps,
            restarts=restarts,
            alpha_max=alpha_max,
            eta=eta,
            beta=beta,
            early_stop=early_stop,
            bounds=bounds,
            seed=seed,
        )

    def _boundaries(
        self,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert target is not None
        point = x.detach().clone().requires_grad_(True)
        logits = model(point)
        rows = torch.arange(x.shape[0], device=x.device)
        gap = logits[rows, target] - logits[rows, y]
        (grad,) = torch.autograd.grad(gap.sum(), point)
        return gap.detach()[:, None], grad.detach()[:, None]

    def _perturb(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        del targets
        with torch.no_grad():
            logits = model(x)
        n_targets = min(self.n_targets, logits.shape[1] - 1)
        # Classes by decreasing clean logit; rank 0 is the prediction (the true class here).
        ranked = logits.argsort(dim=1, descending=True)
        rounds: list[torch.Tensor | None] = [ranked[:, k] for k in range(1, n_targets + 1)]
        result, last_round = self._run_all(
            model=model,
            x=x,
            y=y,
            indices=indices,
            clean_correct=clean_correct,
            targets_per_round=rounds,
        )
        chosen = ranked[:, 1].clone()
        tried = last_round >= 0
        if bool(tried.any()):
            stacked = ranked[:, 1 : n_targets + 1]
            chosen[tried] = stacked[tried, last_round[tried]]
        return result, chosen
