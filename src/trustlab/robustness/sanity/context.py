"""What the sanity checks share, computed once: the subsample, its clean logits, the attacks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import nn

from trustlab.core.checks import check_labels_in_range, check_logits
from trustlab.core.errors import DataError
from trustlab.robustness._counting import CountingModel
from trustlab.robustness.norms import Norm
from trustlab.robustness.pgd import PGD
from trustlab.robustness.result import AttackResult

__all__ = ["MSG_NO_CLASSES", "SanityContext", "WhiteBoxResult"]

MSG_NO_CLASSES = "The model returns {n_classes} logit(s) per example; it needs at least 2."


@runtime_checkable
class WhiteBoxResult(Protocol):
    """What ``attack_results`` may hold: an ``AttackResult``, an ``AutoAttackResult`` or any
    record with per-example ``adv_correct`` and ``n_examples``."""

    @property
    def adv_correct(self) -> torch.Tensor: ...

    @property
    def n_examples(self) -> int: ...


@dataclass
class SanityContext:
    """The evaluation under scrutiny and what several checks read from it.

    Build it with :meth:`create` with the model in eval mode: it runs the two clean forward
    passes of the subsample at once. The PGD runs on the eps grid and the white-box verdicts
    are computed the first time a check asks for them, and kept.

    Attributes
    ----------
    model : torch.nn.Module
        The classifier (in eval mode while the checks run).
    counted : CountingModel
        The same model, counting the passes the checks spend outside attacks.
    x, y : torch.Tensor
        The subsample (n, ...) and its labels (n,), on the CPU.
    indices : torch.Tensor
        The subsample's positions in the inputs passed in (they key the random draws).
    modules_in_training : list of str
        The submodules that were in training mode when the model was handed over.
    logits, logits_again : torch.Tensor
        Two clean forward passes of ``x``, (n, k), on the CPU.
    results : list of WhiteBoxResult
        The evaluation's own attack results on the whole input, if given.
    """

    model: nn.Module
    counted: CountingModel
    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor
    modules_in_training: list[str]
    logits: torch.Tensor
    logits_again: torch.Tensor
    results: list[WhiteBoxResult]
    norm: Norm
    eps: float
    bounds: tuple[float, float]
    seed: int
    eps_factors: list[float]
    pgd_steps: int
    square_queries: int
    n_noise: int
    device: torch.device
    batch_size: int
    attack_forwards: int = 0
    attack_backwards: int = 0
    _grid_fooled: dict[float, torch.Tensor] | None = field(default=None, repr=False)
    _white_fooled: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        *,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        indices: torch.Tensor,
        modules_in_training: list[str],
        results: Sequence[WhiteBoxResult],
        norm: Norm,
        eps: float,
        bounds: tuple[float, float],
        seed: int,
        eps_factors: list[float],
        pgd_steps: int,
        square_queries: int,
        n_noise: int,
        device: torch.device,
        batch_size: int,
    ) -> SanityContext:
        """The context of a subsample, with its two clean forward passes (model in eval mode)."""
        counted = CountingModel(model)
        first = _forward(counted, x, device=device, batch_size=batch_size)
        second = _forward(counted, x, device=device, batch_size=batch_size)
        n_classes = int(first.shape[1])
        if n_classes < 2:
            raise DataError(MSG_NO_CLASSES.format(n_classes=n_classes))
        check_labels_in_range(y, n_classes=n_classes)
        return cls(
            model=model,
            counted=counted,
            x=x,
            y=y,
            indices=indices,
            modules_in_training=modules_in_training,
            logits=first,
            logits_again=second,
            results=list(results),
            norm=norm,
            eps=eps,
            bounds=bounds,
            seed=seed,
            eps_factors=eps_factors,
            pgd_steps=pgd_steps,
            square_queries=square_queries,
            n_noise=n_noise,
            device=device,
            batch_size=batch_size,
        )

    @property
    def n_classes(self) -> int:
        return int(self.logits.shape[1])

    @property
    def clean_correct(self) -> torch.Tensor:
        """Which examples of the subsample the model classifies correctly, (n,)."""
        return self.logits.argmax(dim=1) == self.y

    @property
    def grid(self) -> list[float]:
        """The eps grid of the monotonicity check."""
        return [self.eps * factor for factor in self.eps_factors]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of ``x`` (n, ...) on the CPU, without gradients, counted."""
        return _forward(self.counted, x, device=self.device, batch_size=self.batch_size)

    def spend(self, result: AttackResult) -> None:
        """Count the passes an attack of the checks spent."""
        self.attack_forwards += result.forwards
        self.attack_backwards += result.backwards

    def pgd(self, radius: float) -> AttackResult:
        """A cheap PGD (evaluation mode, one random start) of radius ``radius``."""
        attack = PGD(
            norm=self.norm,
            eps=radius,
            steps=self.pgd_steps,
            early_stop=True,
            bounds=self.bounds,
            seed=self.seed,
        )
        result = attack.generate(
            model=self.model, x=self.x, y=self.y, batch_size=self.batch_size, indices=self.indices
        )
        self.spend(result)
        return result

    def grid_fooled(self) -> dict[float, torch.Tensor]:
        """Per radius of :attr:`grid`, which examples the cheap PGD fooled (run once)."""
        if self._grid_fooled is None:
            self._grid_fooled = {radius: ~self.pgd(radius).adv_correct for radius in self.grid}
        return self._grid_fooled

    def white_fooled(self) -> torch.Tensor:
        """Which examples the white-box attacks fooled: any of the evaluation's results, else
        the cheap PGD at ``eps`` (run once)."""
        if self._white_fooled is None:
            grid_fooled = self.grid_fooled()
            if self.results:
                white = torch.zeros_like(self.clean_correct)
                for result in self.results:
                    white |= ~result.adv_correct[self.indices]
            elif self.eps in grid_fooled:
                white = grid_fooled[self.eps]
            else:
                white = ~self.pgd(self.eps).adv_correct
            self._white_fooled = white
        return self._white_fooled


def _forward(
    model: CountingModel, x: torch.Tensor, *, device: torch.device, batch_size: int
) -> torch.Tensor:
    outputs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            outputs.append(model(x[start : start + batch_size].to(device)).detach().cpu())
    return check_logits(torch.cat(outputs), n_examples=int(x.shape[0]))
