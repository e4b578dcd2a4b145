"""Counting model calls per example."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from trustlab.core.errors import DataError


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
        self._forwards = 0
        self._backwards = 0
        self._pending_forwards: torch.Tensor | None = None
        self._pending_backwards: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None

    @property
    def forwards(self) -> int:
        """Forward passes so far, counted per example."""
        if self._pending_forwards is not None:
            self._forwards += int(self._pending_forwards)
            self._pending_forwards = None
        return self._forwards

    @property
    def backwards(self) -> int:
        """Backward passes so far, counted per example."""
        if self._pending_backwards is not None:
            self._backwards += int(self._pending_backwards)
            self._pending_backwards = None
        return self._backwards

    @contextmanager
    def only(self, active: torch.Tensor | None) -> Iterator[None]:
        """Count only the rows where ``active`` (bool, one per row of the batch) is true, in
        the forward passes of the block and the backward passes through their outputs
        (``None``: count every row)."""
        previous, self._mask = self._mask, active
        try:
            yield
        finally:
            self._mask = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if not isinstance(out, torch.Tensor):
            raise DataError(
                "The model must return a tensor of logits of shape (n_examples, n_classes); "
                f"got {type(out).__name__}."
            )
        mask = self._mask
        if mask is None or mask.shape[0] != x.shape[0]:
            rows = int(x.shape[0])
            self._forwards += rows
            if out.requires_grad:
                out.register_hook(self._count_backward(rows))
            return out
        active = mask.sum()
        self._pending_forwards = _add(self._pending_forwards, active)
        if out.requires_grad:
            out.register_hook(self._count_backward_on_device(active))
        return out

    def _count_backward(self, rows: int) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            del grad
            self._backwards += rows

        return hook

    def _count_backward_on_device(self, active: torch.Tensor) -> Callable[[torch.Tensor], None]:
        def hook(grad: torch.Tensor) -> None:
            del grad
            self._pending_backwards = _add(self._pending_backwards, active)

        return hook


def _add(total: torch.Tensor | None, count: torch.Tensor) -> torch.Tensor:
    return count if total is None else total + count
