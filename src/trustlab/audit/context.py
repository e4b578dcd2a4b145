"""What every section gets: the model, the data, the profile and the shared model outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trustlab.audit.inputs import AuditData, AuditModel
from trustlab.audit.profiles import Profile
from trustlab.core.checks import compute_logits

__all__ = ["AuditContext", "ProgressFn"]

#: Called by a section as ``progress(done, total)`` (in any unit the section picks).
ProgressFn = Callable[[float, float], None]


def _no_progress(done: float, total: float) -> None:
    del done, total


@dataclass
class AuditContext:
    """The inputs of every section, and the outputs they share.

    Attributes
    ----------
    model : AuditModel
    data : AuditData
    profile : Profile
    groups : dict of str to ndarray
        The sensitive attributes the fairness section compares (checked: two groups or more).
    eps : float
        The Linf radius of the robustness section.
    n_classes : int
        Classes the model outputs.
    seed : int
        Seeds every subsample and random draw.
    batch_size : int
        Examples per forward pass.
    progress : callable
        ``progress(done, total)`` of the section that runs.
    work_dir : pathlib.Path or None
        A folder for a section's resumable state (e.g. AutoAttack's), inside the output folder.
    data_digest : str
        :meth:`AuditData.digest` of ``data``, computed once (part of every cache key).
    """

    model: AuditModel
    data: AuditData
    profile: Profile
    groups: dict[str, np.ndarray]
    eps: float
    n_classes: int
    seed: int = 0
    batch_size: int = 256
    progress: ProgressFn = _no_progress
    work_dir: Path | None = None
    data_digest: str = ""
    _logits: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def logits(self, part: str = "data") -> torch.Tensor:
        """The model's logits on the audit data (``"data"``) or the training data
        (``"train"``), on the CPU; computed once and shared by the sections."""
        if part not in self._logits:
            x = self.data.x if part == "data" else self.data.x_train
            if x is None:
                raise KeyError(part)
            self._logits[part] = compute_logits(
                model=self.model.module, x=torch.from_numpy(x), batch_size=self.batch_size
            ).float()
        return self._logits[part]

    def predictions(self, part: str = "data") -> np.ndarray:
        """Arg-max of :meth:`logits`."""
        return self.logits(part).argmax(dim=1).numpy()

    def evaluation_index(self) -> np.ndarray:
        """The examples that measure the model as deployed: the non-members when the data
        carry member flags (the model trained on the members), else every example."""
        if self.data.member is not None and (~self.data.member).any():
            return np.flatnonzero(~self.data.member)
        return np.arange(self.data.n_examples)

    def subsample(self, n: int, *, salt: int = 0) -> np.ndarray:
        """Sorted indices of a seeded random subsample of at most ``n`` evaluation examples."""
        pool = self.evaluation_index()
        if n >= len(pool):
            return pool
        rng = np.random.default_rng([self.seed, salt])
        return np.sort(rng.choice(pool, size=n, replace=False))

    def describe(self) -> dict[str, Any]:
        return {"eps": self.eps, "seed": self.seed, "sensitive": sorted(self.groups)}
