"""Counting model calls per example."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from trustlab.core.errors import DataError


class _Tally:
    """A count kept as a host integer plus, for counts taken from masks, a device tensor that
    is read (one wait for the device) only when the total is asked for."""

    __slots__ = ("done", "pending")

    def __init__(self) -> None:
        self.done = 0
        self.pending: torch.Tensor | None = None

    def add(self, count: int | torch.Tensor) -> None:
        if isinstance(count, int):
            self.done += count
        else:
            self.pending = count if self.pending is None else self.pending + count

    def total(self) -> int:
        if self.pending is not None:
            self.done += int(self.pending)
            self.pending = None
        return self.done


class CountingModel(nn.Module):
    """Wraps a classifier and counts forward and backward passes per example.

    A forward of a batch of ``b`` rows adds ``b`` to :attr:`forwards`; a gradient flowing back
    through the output of such a forward adds ``b`` to :attr:`backwards` (once per backward
    call that reaches the output).

    Inside :meth:`only`, a forward counts only the rows its mask marks active: an attack that
    keeps finished examples in its batch (so that the batch keeps its shape) does not count
    them. Those counts add up on the mask's device and are read only when :attr:`forwards` or
    :attr:`backwards` is, so counting never waits for the device.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._tallies = (_Tally(), _Tally())
        self._masks: list[torch.Tensor | None] = [None]

    @property
    def forwards(self) -> int:
        """Forward passes so far, counted per example."""
        return self._tallies[0].total()

    @property
    def backwards(self) -> int:
        """Backward passes so far, counted per example."""
        return self._tallies[1].total()

    @contextmanager
    def only(self, active: torch.Tensor | None) -> Iterator[None]:
        """Count only the rows where ``active`` (bool, one per row of the batch) is true, in
        the forward passes of the block and the backward passes through their outputs
        (``None``: count every row)."""
        self._masks.append(active)
        try:
            yield
        finally:
            self._masks.pop()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if not isinstance(out, torch.Tensor):
            raise DataError(
                "The model must return a tensor of logits of shape (n_examples, n_classes); "
                f"got {type(out).__name__}."
            )
        mask = self._masks[-1]
        rows: int | torch.Tensor = int(x.shape[0])
        if mask is not None and mask.shape[0] == x.shape[0]:
            rows = mask.sum()
        self._tallies[0].add(rows)
        if out.requires_grad:
            out.register_hook(self._count_backward(rows))
        return out

    def _count_backward(self, rows: int | torch.Tensor) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            del grad
            self._tallies[1].add(rows)

        return hook
