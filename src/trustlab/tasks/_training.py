"""Build-time training shared by the task kinds that train a model (target, victim, baseline)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from trustlab.core.data import load_dataset
from trustlab.core.training import seed_everything
from trustlab.tasks.base import ProgressFn


def load_arrays(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """A registered data set's inputs as float32 and its labels as int64."""
    data = load_dataset(dataset)
    return np.asarray(data.x, dtype=np.float32), np.asarray(data.y, dtype=np.int64)


@contextmanager
def seeded_single_thread(seed: int) -> Iterator[None]:
    """Run the block on one torch thread after seeding every generator with ``seed``, so that a
    build gives the same weights on any machine; the thread count is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(seed)
        yield
    finally:
        torch.set_num_threads(threads)


def epoch_progress(progress: ProgressFn, *, epochs: int) -> Callable[[int, float], None]:
    """A ``fit_classifier`` progress callback reporting each epoch's training loss."""
    return lambda epoch, loss: progress(f"epoch {epoch}/{epochs}, training loss {loss:.4f}")


def architecture_arguments(
    architecture: str, arguments: Mapping[str, Any], *, x: np.ndarray
) -> dict[str, Any]:
    """The spec's constructor arguments, with an ``mlp``'s ``in_features`` filled from ``x``."""
    filled = dict(arguments)
    if architecture == "mlp" and "in_features" not in filled:
        filled["in_features"] = int(np.prod(x.shape[1:]))
    return filled
