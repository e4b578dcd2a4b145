"""Randomness keyed by example: draws that do not depend on batch size or order.

All randomness an attack draws is keyed by ``(seed, example index, step)`` through
:class:`ExampleRandom`, a counter-based generator, rather than by a global random stream.
"""

from __future__ import annotations

import math

import torch

from trustlab.robustness.norms import Norm, expand_rows, per_example_norm

_MASK32 = 0xFFFFFFFF
_SEED_SALT, _INDEX_MUL, _INDEX_ADD = 0x9E3779B9, 0x27D4EB2F, 0x165667B1
_STEP_ADD, _COUNTER_MUL, _COUNTER_ADD = 0x61C88647, 0x2C1B3C6D, 0x297A2D39
#: A uniform draw keeps the top 24 of its 32 bits: a float32 holds ``k / 2**24`` exactly.
_UNIFORM_BITS = 24


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash ("lowbias32"), vectorised on int64 tensors holding 32-bit values.

    Integer arithmetic only (products wrap, then are masked to 32 bits), so it gives the same
    bits on every device.
    """
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def _mix32_int(x: int) -> int:
    """:func:`_mix32` of one Python integer (for the keys shared by a whole draw)."""
    x &= _MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def _target(indices: torch.Tensor, device: torch.device | str | None) -> torch.device:
    """The device a draw is made on: ``device``, or by default that of ``indices``."""
    return indices.device if device is None else torch.device(device)


def _float_math_device(device: torch.device) -> torch.device:
    """Where the float64 transforms of a draw run: the target device, unless it lacks float64."""
    return torch.device("cpu") if device.type == "mps" else device


class ExampleRandom:
    """Counter-based random numbers keyed by ``(seed, example index, step)``.

    The draw for one example never depends on which other examples share its batch, so an
    attack's result is the same for any batch size or order. ``step`` tells draws apart
    (a restart, an iteration).

    The numbers are made where they are used: the hash is integer arithmetic on tensors of the
    target ``device`` (by default the device of ``indices``), so a draw on a GPU copies nothing
    from the host and gives the same bits as on the CPU. Uniform and integer draws are equal
    on every device; normal draws go through float64 ``log`` and ``cos``, whose last bit may
    differ between devices' math libraries.

    >>> rng = ExampleRandom(seed=0)
    >>> a = rng.uniform(indices=torch.tensor([3, 4]), step=0, shape=(2,))
    >>> b = rng.uniform(indices=torch.tensor([4]), step=0, shape=(2,))
    >>> bool(torch.equal(a[1], b[0]))
    True
    """

    def __init__(self, *, seed: int) -> None:
        self.seed = int(seed)

    def _bits(
        self, indices: torch.Tensor, step: int, shape: tuple[int, ...], device: torch.device
    ) -> torch.Tensor:
        """32 random bits per (example, counter), as int64 on ``device``."""
        numel = math.prod(shape)
        key = _mix32_int(self.seed ^ _SEED_SALT)
        step_key = _mix32_int((int(step) & _MASK32) + _STEP_ADD)
        keys = indices.to(device=device, dtype=torch.int64)
        rows = _mix32(key ^ _mix32(keys * _INDEX_MUL + _INDEX_ADD))
        rows = _mix32(rows ^ step_key)
        counters = torch.arange(numel, dtype=torch.int64, device=device)
        bits = _mix32(rows[:, None] ^ _mix32(counters * _COUNTER_MUL + _COUNTER_ADD)[None, :])
        return bits.reshape(keys.shape[0], *shape)

    def uniform(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        shape: tuple[int, ...],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Uniform numbers in [0, 1), shape (len(indices), *shape), on ``device`` (default: that
        of ``indices``)."""
        target = _target(indices, device)
        bits = self._bits(indices, step, shape, target) >> (32 - _UNIFORM_BITS)
        # k / 2**24 is exact in float32 (and so in float64); a narrower dtype rounds it once.
        return bits.to(torch.float32).mul_(2.0**-_UNIFORM_BITS).to(dtype)

    def normal(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        shape: tuple[int, ...],
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Standard normal numbers (Box-Muller), shape (len(indices), *shape), on ``device``
        (default: that of ``indices``)."""
        target = _target(indices, device)
        where = _float_math_device(target)
        u1 = self.uniform(
            indices=indices, step=2 * step, shape=shape, device=where, dtype=torch.float64
        )
        u2 = self.uniform(
            indices=indices, step=2 * step + 1, shape=shape, device=where, dtype=torch.float64
        )
        radius = torch.sqrt(-2.0 * torch.log1p(-u1))
        return (radius * torch.cos(2 * math.pi * u2)).to(device=target, dtype=dtype)

    def integers(
        self,
        *,
        indices: torch.Tensor,
        step: int,
        high: int | torch.Tensor,
        shape: tuple[int, ...] = (),
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Integers in [0, high), shape (len(indices), *shape); ``high`` may be per example.

        On ``device`` (default: that of ``indices``)."""
        target = _target(indices, device)
        where = _float_math_device(target)
        u = self.uniform(indices=indices, step=step, shape=shape, device=where, dtype=torch.float64)
        high_t = torch.as_tensor(high, dtype=torch.float64, device=where)
        if high_t.dim() == 1:
            high_t = high_t.reshape(-1, *([1] * len(shape)))
        return torch.floor(u * high_t).to(device=target, dtype=torch.int64)

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
        unit = direction / expand_rows(
            per_example_norm(direction, norm).clamp_min(1e-12), direction
        )
        dim = math.prod(shape)
        radius = self.uniform(
            indices=indices, step=step + 7919, shape=(), device=device, dtype=dtype
        ) ** (1.0 / dim)
        return unit * expand_rows(radius * eps, unit)


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
