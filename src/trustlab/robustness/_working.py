"""The working batch of an attack's step loop: the examples it is still attacking.

Attacks stop working on an example once it is broken. Taking it out of the batch at once
needs the number of examples left on the host, so a wait for the device at every step, and it
gives the model a new batch shape at every step, which cuDNN's autotuner
(``torch.backends.cudnn.benchmark``) tunes again for each. A :class:`WorkingSet` keeps the
mask of active examples on the device instead and compacts the batch only at checks
(:class:`Compaction`):

- on the CPU, at every step, to exactly the examples left: reading the count costs nothing
  and every row dropped is compute saved;
- on an accelerator, every :data:`CHECK_EVERY` steps; with the cuDNN autotuner on, the batch
  also keeps one of a few sizes (:func:`bucket`), padded at the start with copies of its own
  rows, so that the model sees few shapes.

Rows kept only to fill a size are inactive: the attack computes them and ignores the results,
and :meth:`CountingModel.only <trustlab.robustness._counting.CountingModel.only>` leaves them
out of the pass counts. Each example's computation does not depend on the other rows of its
batch, so which examples are broken does not depend on the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Steps between two checks of the number of active examples on an accelerator.
CHECK_EVERY = 4


@dataclass(frozen=True)
class Compaction:
    """When and how a :class:`WorkingSet` compacts its batch.

    Attributes
    ----------
    every : int
        Steps between checks; each check reads one count from the device.
    bucketed : bool
        Keep the batch at one of the sizes of :func:`bucket` (padding it at the start).
    """

    every: int
    bucketed: bool


def compaction_for(device: torch.device) -> Compaction:
    """The policy for a loop on ``device`` (see the module's docstring)."""
    if device.type == "cpu":
        return Compaction(every=1, bucketed=False)
    tuned = device.type == "cuda" and bool(torch.backends.cudnn.benchmark)
    return Compaction(every=CHECK_EVERY, bucketed=tuned)


def bucket(m: int) -> int:
    """The smallest size ``>= m`` of the form ``2**k`` or ``3 * 2**k``.

    >>> [bucket(m) for m in (1, 3, 5, 7, 100, 450)]
    [1, 3, 6, 8, 128, 512]
    """
    if m <= 2:
        return m
    power = 1 << (m - 1).bit_length()
    three_quarters = power // 4 * 3
    return three_quarters if three_quarters >= m else power


class WorkingSet:
    """The rows of a step loop's batch and which of them are still active, on the device.

    ``n`` examples start active. With a bucketed policy the batch starts at ``bucket(n)``
    rows: :attr:`take` then gathers the initial per-row tensors (the ``n`` examples, then
    copies of the first ones as inactive padding), and results are written to buffers of
    :attr:`size` rows, of which the first ``n`` are the examples'.

    Use: after each step, :meth:`retire` the rows that are done, then call :meth:`check` with
    the result buffers to write back; when it returns an index, apply it to every per-row
    tensor of the loop (``t[keep]``). :attr:`empty` says that no row is active (known after a
    check); :meth:`scatter` writes the last results back.

    >>> ws = WorkingSet(3, device=torch.device("cpu"))
    >>> ws.retire(torch.tensor([False, True, False])).tolist()
    [False, True, False]
    >>> ws.check().tolist(), ws.rows.tolist()
    ([0, 2], [0, 2])
    """

    def __init__(
        self, n: int, *, device: torch.device, compaction: Compaction | None = None
    ) -> None:
        self.compaction = compaction_for(device) if compaction is None else compaction
        size = bucket(n) if self.compaction.bucketed else n
        #: Gathers the initial per-row tensors (``None``: they are used as they are).
        self.take: torch.Tensor | None = None
        if size > n:
            self.take = torch.arange(size, device=device) % n
        #: Each row's position in the loop's result buffers.
        self.rows = torch.arange(size, device=device)
        self.active = self.rows < n
        self.size = size
        self.remaining = n
        self._since_check = 0

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """An initial per-row tensor of the ``n`` examples, padded as the batch is."""
        return tensor if self.take is None else tensor[self.take]

    @property
    def empty(self) -> bool:
        return self.remaining == 0

    @property
    def exact(self) -> bool:
        """Whether the batch holds exactly the active rows after every step (on the CPU): a
        loop may then also gather subsets of rows at every step, and count every row."""
        return self.compaction.every == 1 and not self.compaction.bucketed

    @property
    def counted(self) -> torch.Tensor | None:
        """The mask for :meth:`CountingModel.only`: ``None`` when every row is active."""
        return None if self.exact else self.active

    def retire(self, done: torch.Tensor) -> torch.Tensor:
        """Mark the rows where ``done`` is true as finished; returns those that were active."""
        newly = done & self.active
        self.active = self.active & ~done
        return newly

    def check(
        self, *flush: tuple[torch.Tensor, torch.Tensor], now: bool = False
    ) -> torch.Tensor | None:
        """Count the active rows if a check is due (or ``now``) and compact the batch.

        Returns the positions of the rows to keep, or ``None`` if the batch stays as it is.
        Before rows are dropped, each ``(buffer, values)`` pair of ``flush`` is written back
        with :meth:`scatter`.
        """
        self._since_check += 1
        if self._since_check < self.compaction.every and not now:
            return None
        self._since_check = 0
        remaining = int(self.active.sum())
        self.remaining = remaining
        size = bucket(remaining) if self.compaction.bucketed else remaining
        if size >= self.size:
            return None
        for buffer, values in flush:
            self.scatter(buffer, values)
        if self.compaction.bucketed:
            # Active rows first, in order, then finished ones as padding.
            keep = torch.argsort((~self.active).to(torch.uint8), stable=True)[:size]
        else:
            keep = self.active.nonzero().squeeze(1)
        self.rows, self.active, self.size = self.rows[keep], self.active[keep], size
        return keep

    def scatter(self, buffer: torch.Tensor, values: torch.Tensor) -> None:
        """Write the batch's per-row ``values`` into the result ``buffer`` at :attr:`rows`."""
        buffer.index_copy_(0, self.rows, values)
