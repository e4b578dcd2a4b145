"""Seeding in one place: the global seed, scoped seeds and local generators.

trustlab never reseeds the caller's global random state behind their back. Work that needs
randomness either draws from a local :class:`torch.Generator` (:func:`make_generator`) or runs
inside :func:`seeded`, which forks torch's random state (CPU and the device in use), seeds it,
optionally switches on deterministic algorithms, and restores everything on exit.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from trustlab.core.params import Seed, check_param

__all__ = ["make_generator", "seed_everything", "seeded"]


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Parameters
    ----------
    seed : int
        In ``[0, 2**32 - 1]``.

    Examples
    --------
    >>> import torch
    >>> seed_everything(0); a = torch.rand(1)
    >>> seed_everything(0); bool((torch.rand(1) == a).all())
    True
    """
    seed = check_param(seed, Seed, name="seed", owner="seed_everything")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _cuda_devices(device: torch.device | str | None) -> list[int]:
    if device is None:
        return []
    device = torch.device(device)
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


@contextlib.contextmanager
def seeded(
    seed: int, *, device: torch.device | str | None = None, deterministic: bool = False
) -> Iterator[None]:
    """Run the block with torch's global generators seeded, then restore the caller's state.

    Parameters
    ----------
    seed : int
        In ``[0, 2**32 - 1]``.
    device : torch.device or str, optional
        A CUDA device whose generator is forked and seeded as well.
    deterministic : bool, default=False
        Also switch on ``torch.use_deterministic_algorithms`` (warn-only, so an op without a
        deterministic CUDA kernel warns instead of failing) and switch off cuDNN autotuning for
        the block. On CUDA, set ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` as well.

    Examples
    --------
    >>> import torch
    >>> with seeded(3):
    ...     a = torch.rand(1)
    >>> with seeded(3):
    ...     b = torch.rand(1)
    >>> bool(a == b)
    True
    """
    seed = check_param(seed, Seed, name="seed", owner="seeded")
    with torch.random.fork_rng(devices=_cuda_devices(device)):
        torch.manual_seed(seed)
        if not deterministic:
            yield
            return
        previous = torch.are_deterministic_algorithms_enabled()
        previous_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        previous_benchmark = torch.backends.cudnn.benchmark
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous, warn_only=previous_warn_only)
            torch.backends.cudnn.benchmark = previous_benchmark


def make_generator(seed: int, *, device: torch.device | str | None = None) -> torch.Generator:
    """A local :class:`torch.Generator` on ``device`` (CPU by default), seeded with ``seed``.

    Examples
    --------
    >>> import torch
    >>> a = torch.randperm(5, generator=make_generator(0))
    >>> b = torch.randperm(5, generator=make_generator(0))
    >>> bool((a == b).all())
    True
    """
    seed = check_param(seed, Seed, name="seed", owner="make_generator")
    return torch.Generator(device=torch.device(device or "cpu")).manual_seed(seed)
