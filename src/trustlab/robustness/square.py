"""Square Attack: a score-based black-box attack by random square-shaped updates.

Square (Andriushchenko et al., 2020) queries only the model's scores. Each step changes the
current best perturbation inside one randomly placed square window (two in L2: one where mass
is moved to, one it is taken from) and keeps the change if the loss went down. The window
shrinks along a fixed schedule of the step number. An example stops being attacked as soon as
it is misclassified (untargeted) or classified as its target (targeted), so each example uses
only the queries it needs.
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from trustlab.core.errors import DataError
from trustlab.core.params import Constraint, Options, Real, validate_params
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._params import AT_LEAST_ONE, store_params
from trustlab.robustness._random import ExampleRandom
from trustlab.robustness._working import WorkingSet
from trustlab.robustness.base import Attack
from trustlab.robustness.norms import Norm
from trustlab.robustness.registry import register_attack

__all__ = ["Square", "SquareTargeted", "p_schedule", "stripe_pattern"]

MSG_IMAGE = (
    "{owner} needs image inputs of shape (n, channels, height, width); got shape {shape}. "
    "Reshape the inputs (and wrap the model to accept that shape) first."
)

#: Iterations (for a budget of 10,000 queries) after which the square's share of the image
#: is halved, from the reference implementation.
HALVING_POINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
#: The query budget the halving points are written for.
SCHEDULE_BUDGET = 10_000

_TINY = 1e-12
# Steps whose random numbers are drawn together (one draw per block of steps, not per step).
_BLOCK = 64


def p_schedule(iteration: int, *, p_init: float, n_queries: int) -> float:
    """The share of the image a square covers at ``iteration``.

    ``p_init`` is halved at each of :data:`HALVING_POINTS`, rescaled from a budget of 10,000
    queries to ``n_queries`` (iteration ``i`` of ``n_queries`` is treated as iteration
    ``i * 10000 / n_queries``).

    >>> p_schedule(0, p_init=0.8, n_queries=10_000), p_schedule(11, p_init=0.8, n_queries=10_000)
    (0.8, 0.4)
    >>> p_schedule(6, p_init=0.8, n_queries=5_000)  # 6 of 5,000 is 12 of 10,000
    0.4
    """
    scaled = int(iteration / n_queries * SCHEDULE_BUDGET)
    halvings = sum(scaled > point for point in HALVING_POINTS)
    return p_init / 2**halvings


def _rings(rows: int, cols: int) -> torch.Tensor:
    """Concentric rectangles around the centre, the ring at distance k weighted by sum 1/j^2."""
    if rows == 0 or cols == 0:
        return torch.zeros(rows, cols, dtype=torch.float64)
    n_rings = max(rows // 2, cols // 2) + 1
    r = torch.arange(rows)[:, None] - rows // 2
    c = torch.arange(cols)[None, :] - cols // 2
    distance = torch.maximum(r.abs(), c.abs())
    # tail[k] = sum over j = k .. n_rings - 1 of 1 / (j + 1)^2
    weights = 1.0 / torch.arange(1, n_rings + 1, dtype=torch.float64) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)
    pattern = tail[distance.clamp(max=n_rings - 1)]
    return pattern / pattern.norm()


def stripe_pattern(size: int) -> torch.Tensor:
    """The L2 update pattern of a ``size`` x ``size`` square, unit L2 norm (float64).

    Two stacks of concentric rectangles, positive in the top half and negative in the bottom
    half, so the update changes the image a lot for a small L2 norm (the paper's Fig. 2).

    >>> round(stripe_pattern(3).norm().item(), 6)
    1.0
    """
    top = _rings(size // 2, size)
    bottom = -_rings(size - size // 2, size)
    pattern = torch.cat((top, bottom), dim=0)
    return pattern / pattern.norm().clamp_min(_TINY)


@functools.lru_cache(maxsize=64)
def _cached_pattern(size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """:func:`stripe_pattern` on ``device``, built (and copied there) once per size: the L2
    steps reuse a few sizes."""
    return stripe_pattern(size).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=256)
def _cached_sizes(sizes: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The square sizes of a block of steps as a tensor on ``device``, copied there once."""
    return torch.tensor(sizes, device=device)


class _SquareBase(Attack):
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF, Norm.L2)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "n_queries": AT_LEAST_ONE,
        "p_init": Real(low=0, high=1, closed="right"),
        "restarts": AT_LEAST_ONE,
        "loss": Options("margin", "ce"),
    }

    eps: float
    n_queries: int
    p_init: float
    restarts: int
    loss: str

    def __init__(
        self,
        *,
        norm: Norm | str = Norm.LINF,
        eps: float,
        n_queries: int = 5000,
        p_init: float = 0.8,
        restarts: int = 1,
        loss: str = "margin",
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            n_queries=n_queries,
            p_init=p_init,
            restarts=restarts,
            loss=loss,
            bounds=bounds,
            seed=seed,
        )
        validate_params(self)

    # ----------------------------------------------------------------------------------------
    # Scores

    def _margin_and_loss(
        self, model: CountingModel, x: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One query: (margin > 0 while the attack has not succeeded, loss to minimise)."""
        logits = model(x)
        column = labels[:, None]
        own = logits.gather(1, column).squeeze(1)
        best_other = logits.scatter(1, column, -math.inf).amax(dim=1)
        if self.targeted:
            return best_other - own, F.cross_entropy(logits, labels, reduction="none")
        margin = own - best_other
        if self.loss == "ce":
            return margin, -F.cross_entropy(logits, labels, reduction="none")
        return margin, margin

    # ----------------------------------------------------------------------------------------
    # The attack

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
        owner = type(self).__name__
        if x.dim() != 4:
            raise DataError(MSG_IMAGE.format(owner=owner, shape=tuple(x.shape)))
        with torch.no_grad():
            if targets is not None:
                labels = targets
                todo = model(x).argmax(dim=1) != targets
            else:
                labels = y
                todo = clean_correct.clone()
            result = x.clone()
            for restart in range(self.restarts):
                rows = todo.nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                adv, margin = self._single_run(
                    model=model,
                    x=x[rows],
                    labels=labels[rows],
                    indices=indices[rows],
                    restart=restart,
                )
                done = margin <= 0
                result[rows[done]] = adv[done]
                todo[rows[done]] = False
        return result

    def _single_run(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        labels: torch.Tensor,
        indices: torch.Tensor,
        restart: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One run of at most ``n_queries`` queries per example; (x_best, margin)."""
        rng = ExampleRandom(seed=self.seed)
        base_step = restart * (self.n_queries + 1)
        # The working set: the examples not broken yet, compacted at its checks (see
        # :mod:`trustlab.robustness._working`), so a step gathers nothing and queries only
        # the examples still being attacked (and, on an accelerator, a few finished ones).
        m = x.shape[0]
        ws = WorkingSet(m, device=x.device)
        work_x, work_labels, work_keys = ws.gather(x), ws.gather(labels), ws.gather(indices)
        work_best = self._initial_point(work_x, work_keys, rng, base_step)
        with model.only(ws.counted):
            work_margin, work_loss = self._margin_and_loss(model, work_best, work_labels)
        # The result buffers, one row per row of the first batch.
        best_out, margin_out = work_best.clone(), work_margin.clone()
        ws.retire(work_margin <= 0)
        keep = ws.check(now=True)
        if keep is not None:
            work_x, work_labels, work_keys, work_best, work_margin, work_loss = (
                t[keep] for t in (work_x, work_labels, work_keys, work_best, work_margin, work_loss)
            )
        steps: tuple[torch.Tensor, ...] = ()
        for iteration in range(self.n_queries - 1):
            if ws.empty:
                break
            step = iteration % _BLOCK
            if step == 0:
                steps = self._block(
                    rng, work_keys, base_step + 1 + iteration // _BLOCK, iteration, work_x
                )
            if self.norm is Norm.LINF:
                x_new = self._linf_candidate(work_x, work_best, steps[0][:, step])
            else:
                p = p_schedule(iteration, p_init=self.p_init, n_queries=self.n_queries)
                x_new = self._l2_candidate(work_x, work_best, steps[0][:, step], p)
            margin, loss = self._query(
                model, ws, x_new, work_best, work_labels, work_margin, work_loss
            )
            lower = (loss < work_loss) & ws.active
            work_loss = torch.where(lower, loss, work_loss)
            accept = lower | ((margin <= 0) & ws.active)
            work_margin = torch.where(accept, margin, work_margin)
            work_best = torch.where(accept[:, None, None, None], x_new, work_best)
            ws.retire(work_margin <= 0)
            keep = ws.check((best_out, work_best), (margin_out, work_margin))
            if keep is not None:
                work_x, work_labels, work_keys, work_best, work_margin, work_loss = (
                    t[keep]
                    for t in (work_x, work_labels, work_keys, work_best, work_margin, work_loss)
                )
                steps = tuple(t[keep] for t in steps)
        ws.scatter(best_out, work_best)
        ws.scatter(margin_out, work_margin)
        return best_out[:m], margin_out[:m]

    def _query(
        self,
        model: CountingModel,
        ws: WorkingSet,
        x_new: torch.Tensor,
        x_best: torch.Tensor,
        labels: torch.Tensor,
        margin: torch.Tensor,
        loss: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The margin and loss of the candidates of the active rows.

        A candidate equal to its current point (late in a Linf run, when the small window
        already holds the signs drawn) keeps the current point's margin and loss: querying it
        would return them again. It is neither queried nor counted, which changes no result.
        """
        changed = (x_new != x_best).flatten(1).any(dim=1) & ws.active
        if not ws.exact:
            # Gathering the changed rows would wait for the device: query the whole batch.
            with model.only(changed):
                new_margin, new_loss = self._margin_and_loss(model, x_new, labels)
            return torch.where(changed, new_margin, margin), torch.where(changed, new_loss, loss)
        rows = changed.nonzero().squeeze(1)
        if rows.numel() == changed.numel():
            return self._margin_and_loss(model, x_new, labels)
        margin, loss = margin.clone(), loss.clone()
        if rows.numel() > 0:
            margin[rows], loss[rows] = self._margin_and_loss(model, x_new[rows], labels[rows])
        return margin, loss

    def _block(
        self,
        rng: ExampleRandom,
        indices: torch.Tensor,
        step: int,
        first: int,
        x: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """The random numbers of the next _BLOCK steps of the examples ``indices``, one draw.

        Per step: the square's top and left, the second square's top and left (L2), the L2
        pattern's orientation, then one sign per channel. L2 gets them raw, shaped
        (m, _BLOCK, 5 + channels); Linf gets each step's window already built, as the update
        ``(m, _BLOCK, channels, h, w)`` of +-2 eps inside the window and 0 outside.
        """
        draws = rng.uniform(
            indices=indices, step=step, shape=(_BLOCK, 5 + x.shape[1]), dtype=torch.float64
        ).to(x.device)
        if self.norm is Norm.L2:
            return (draws,)
        height, width = x.shape[2:]
        sizes = tuple(
            self._square_size(
                p_schedule(first + k, p_init=self.p_init, n_queries=self.n_queries), x, minimum=1
            )
            for k in range(_BLOCK)
        )
        size = _cached_sizes(sizes, x.device)
        top = torch.floor(draws[:, :, 0] * (height - size)).long()
        left = torch.floor(draws[:, :, 1] * (width - size)).long()
        r = torch.arange(height, device=x.device)
        c = torch.arange(width, device=x.device)
        end_top, end_left = (top + size)[..., None], (left + size)[..., None]
        in_rows = (r >= top[..., None]) & (r < end_top)
        in_cols = (c >= left[..., None]) & (c < end_left)
        window = (in_rows[..., :, None] & in_cols[..., None, :])[:, :, None].to(x.dtype)
        signs = torch.where(draws[:, :, 5:] < 0.5, -1.0, 1.0).to(x.dtype)[..., None, None]
        return (window * (2 * self.eps) * signs,)

    def _signs(
        self,
        rng: ExampleRandom,
        indices: torch.Tensor,
        step: int,
        shape: tuple[int, ...],
        like: torch.Tensor,
    ) -> torch.Tensor:
        u = rng.uniform(indices=indices, step=step, shape=shape, device=like.device)
        return torch.where(u < 0.5, -1.0, 1.0).to(like.dtype)

    def _initial_point(
        self, x: torch.Tensor, indices: torch.Tensor, rng: ExampleRandom, step: int
    ) -> torch.Tensor:
        low, high = self.bounds
        channels, height, width = x.shape[1:]
        if self.norm is Norm.LINF:
            # Vertical stripes: one random sign per channel and column.
            signs = self._signs(rng, indices, step, (channels, 1, width), x)
            return (x + self.eps * signs).clamp(low, high)
        size = max(height // 5, 1)
        offset = (height - 5 * size) // 2
        pattern = _cached_pattern(size, x.device, x.dtype)
        delta = torch.zeros_like(x)
        grid_rows, grid_cols = height // size, width // size
        # Per window: one sign per channel and the pattern's orientation, in one draw.
        draws = rng.uniform(
            indices=indices, step=step, shape=(grid_rows * grid_cols, channels + 1)
        ).to(device=x.device, dtype=x.dtype)
        for i in range(grid_rows):
            top = offset + i * size
            for j in range(grid_cols):
                left = offset + j * size
                window = draws[:, i * grid_cols + j]
                signs = torch.where(window[:, :channels] < 0.5, -1.0, 1.0)[:, :, None, None]
                flips = window[:, channels]
                rows_in = max(0, min(size, height - top))
                cols_in = max(0, min(size, width - left))
                if rows_in == 0 or cols_in == 0:
                    continue
                oriented = torch.where(
                    (flips > 0.5)[:, None, None], pattern.T[None], pattern[None]
                )[:, None, :rows_in, :cols_in]
                delta[:, :, top : top + rows_in, left : left + cols_in] += oriented * signs
        return (x + self.eps * _unit_l2(delta)).clamp(low, high)

    def _square_size(self, p: float, x: torch.Tensor, *, minimum: int) -> int:
        channels, height, width = x.shape[1:]
        n_features = channels * height * width
        size = max(round(math.sqrt(p * n_features / channels)), minimum)
        if self.norm is Norm.L2 and size % 2 == 0:
            size += 1
        return max(1, min(size, height, width))

    @staticmethod
    def _corner(
        draws: torch.Tensor, column: int, size: int, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A square's top-left corner, uniform over the ``(h - s) x (w - s)`` first positions."""
        height, width = x.shape[2:]
        top = torch.floor(draws[:, column] * (height - size)).long()
        left = torch.floor(draws[:, column + 1] * (width - size)).long()
        return top, left

    @staticmethod
    def _channel_signs(draws: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        signs = torch.where(draws[:, 5:] < 0.5, -1.0, 1.0).to(x.dtype)
        return signs[:, :, None, None]

    def _linf_candidate(
        self, x: torch.Tensor, x_best: torch.Tensor, update: torch.Tensor
    ) -> torch.Tensor:
        low, high = self.bounds
        candidate = x_best + update
        candidate = torch.minimum(torch.maximum(candidate, x - self.eps), x + self.eps)
        return candidate.clamp(low, high)

    def _l2_candidate(
        self, x: torch.Tensor, x_best: torch.Tensor, draws: torch.Tensor, p: float
    ) -> torch.Tensor:
        low, high = self.bounds
        m, channels = x.shape[:2]
        size = self._square_size(p, x, minimum=3)
        delta = x_best - x
        top, left = self._corner(draws, 0, size, x)
        top2, left2 = self._corner(draws, 2, size, x)
        rows1, cols1 = _window_index(top, left, size)
        rows2, cols2 = _window_index(top2, left2, size)
        example = torch.arange(m, device=x.device)[:, None, None, None]
        channel = torch.arange(channels, device=x.device)[None, :, None, None]
        inside1 = delta[example, channel, rows1, cols1]
        norm_window1 = inside1.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()
        norm_image = _l2(delta)
        union = torch.maximum(_window_mask(top, left, size, x), _window_mask(top2, left2, size, x))
        norm_windows = _l2(delta * union)
        pattern = _cached_pattern(size, x.device, x.dtype)
        flips = draws[:, 4]
        oriented = torch.where((flips > 0.5)[:, None, None], pattern.T[None], pattern[None])
        signs = self._channel_signs(draws, x)
        update = oriented[:, None] * signs + inside1 / (_TINY + norm_window1)
        budget = (
            torch.clamp(self.eps**2 - norm_image**2, min=0) / channels + norm_windows**2
        ).sqrt()
        update = update / (_TINY + update.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()) * budget
        delta[example, channel, rows2, cols2] = 0.0
        delta[example, channel, rows1, cols1] = update
        return (x + self.eps * _unit_l2(delta)).clamp(low, high)


def _l2(delta: torch.Tensor) -> torch.Tensor:
    """Each example's L2 norm, shaped (n, 1, 1, 1)."""
    return delta.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt()


def _unit_l2(delta: torch.Tensor) -> torch.Tensor:
    return delta / (_l2(delta) + _TINY)


def _window_index(
    top: torch.Tensor, left: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of each example's window, broadcastable to (m, c, s, s)."""
    span = torch.arange(size, device=top.device)
    rows = (top[:, None] + span)[:, None, :, None]
    cols = (left[:, None] + span)[:, None, None, :]
    return rows, cols


def _window_mask(top: torch.Tensor, left: torch.Tensor, size: int, x: torch.Tensor) -> torch.Tensor:
    """1 inside each example's window, 0 elsewhere, shaped (m, 1, h, w) in ``x``'s dtype."""
    height, width = x.shape[2:]
    r = torch.arange(height, device=x.device)[None, :]
    c = torch.arange(width, device=x.device)[None, :]
    in_rows = (r >= top[:, None]) & (r < top[:, None] + size)
    in_cols = (c >= left[:, None]) & (c < left[:, None] + size)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None].to(x.dtype)


@register_attack
class Square(_SquareBase):
    """Untargeted Square Attack (Andriushchenko et al., 2020), Linf and L2.

    Andriushchenko, M., Croce, F., Flammarion, N. and Hein, M. "Square Attack: a
    query-efficient black-box adversarial attack via random search", ECCV 2020. Follows the
    reference implementation in AutoAttack (``fra31/auto-attack``, ``square.py``): Linf starts
    from vertical stripes of +-eps and sets a random square of each channel to +-eps relative
    to the clean input; L2 starts from a grid of the stripe patterns of the paper and moves
    perturbation mass from one random square into another. The square covers a share
    :func:`p_schedule` of the image. The loss is the margin (default) or the cross-entropy;
    a candidate replaces the current point if it lowers the loss or misclassifies.

    Threat model: score-based black-box. It uses only the logits, never gradients; each
    forward pass of one example is one query (counted in ``AttackResult.forwards``).

    Parameters
    ----------
    norm : {"Linf", "L2"}, default="Linf"
    eps : float
        Radius of the threat model.
    n_queries : int, default=5000
        Query budget per example and restart (the initial point included).
    p_init : float, default=0.8
        The share of the image covered by the first squares.
    restarts : int, default=1
        Runs per example; later runs attack only the examples earlier runs did not break.
    loss : {"margin", "ce"}, default="margin"
        The untargeted loss.
    bounds : (float, float), default=(0.0, 1.0)
        The valid input range.
    seed : int, default=0
        Seed of the random squares (keyed by example: results do not depend on batch size).

    Notes
    -----
    Departures from the reference: each example draws its own square position, signs and
    pattern orientation (the reference's PyTorch version shares one position per batch; the
    paper's code, like this one, draws per image), so results do not depend on how examples
    are batched; the initial point counts against ``n_queries`` (the reference spends
    ``n_queries`` after it); squares are capped at the image's smaller side.

    Shapes
    ------
    ``x``: (n, channels, height, width) in ``bounds``; ``y``: (n,).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> attack = Square(eps=0.1, n_queries=50)
    >>> result = attack.generate(model=model, x=torch.rand(4, 1, 4, 4), y=torch.zeros(4).long())
    >>> bool((result.perturbation <= 0.1 + 1e-6).all())
    True
    """

    name: ClassVar[str] = "square"


@register_attack
class SquareTargeted(_SquareBase):
    """Targeted Square Attack: drives each example into its given target class.

    As :class:`Square`, but the candidate is judged by the cross-entropy to the target (the
    reference's targeted loss; ``loss`` is ignored), and an example is done once it is
    classified as its target. Examples already classified as their target are left alone.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> attack = SquareTargeted(eps=0.5, n_queries=50)
    >>> x, t = torch.rand(4, 1, 4, 4), torch.ones(4).long()
    >>> attack.generate(model=model, x=x, y=torch.zeros(4).long(), targets=t).x_adv.shape
    torch.Size([4, 1, 4, 4])
    """

    name: ClassVar[str] = "square-t"
    targeted: ClassVar[bool] = True
