"""The resumable state of an AutoAttack cascade: what each example's fate is so far.

Saved atomically after every stage to the ``state_path`` a user gives, and loaded only when its
fingerprint (a hash of the model, the data, the attacks and the seed) matches, so a state file
from another evaluation is refused rather than mixed in. NumPy's ``.npz`` without pickles.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trustlab.core.errors import ConfigurationError

MSG_STATE_MISMATCH = (
    "The state file {path} belongs to a different evaluation (other model, data, attacks or "
    "seed). Delete it, or pass another state_path, to start afresh."
)
MSG_STATE_UNREADABLE = (
    "The state file {path} cannot be read ({problem}). Delete it to start afresh."
)

#: ``broken_by`` code of an example no attack broke.
NOT_BROKEN = -1


@dataclass
class CascadeState:
    """The resumable state of a cascade."""

    x_adv: torch.Tensor
    robust: torch.Tensor
    broken_by: torch.Tensor
    stage: int
    rows: torch.Tensor | None
    done: int
    attacked: np.ndarray
    robust_after: np.ndarray
    forwards: np.ndarray
    backwards: np.ndarray
    seconds: np.ndarray

    @classmethod
    def fresh(cls, *, x: torch.Tensor, clean_correct: torch.Tensor, n_attacks: int) -> CascadeState:
        return cls(
            x_adv=x.clone(),
            robust=clean_correct.clone(),
            broken_by=torch.full((x.shape[0],), NOT_BROKEN, dtype=torch.int64),
            stage=0,
            rows=None,
            done=0,
            attacked=np.zeros(n_attacks, dtype=np.int64),
            robust_after=np.full(n_attacks, -1, dtype=np.int64),
            forwards=np.zeros(n_attacks, dtype=np.int64),
            backwards=np.zeros(n_attacks, dtype=np.int64),
            seconds=np.zeros(n_attacks, dtype=np.float64),
        )

    def save(self, path: Path, *, fingerprint: str) -> None:
        """Write the state atomically (a temporary file, then a rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        rows = np.zeros(0, dtype=np.int64) if self.rows is None else self.rows.numpy()
        with open(temporary, "wb") as handle:
            np.savez(
                handle,
                fingerprint=np.array(fingerprint),
                x_adv=self.x_adv.cpu().numpy(),
                robust=self.robust.numpy(),
                broken_by=self.broken_by.numpy(),
                stage=np.array(self.stage, dtype=np.int64),
                has_rows=np.array(self.rows is not None),
                rows=rows,
                done=np.array(self.done, dtype=np.int64),
                attacked=self.attacked,
                robust_after=self.robust_after,
                forwards=self.forwards,
                backwards=self.backwards,
                seconds=self.seconds,
            )
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path, *, fingerprint: str, like: torch.Tensor) -> CascadeState:
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = {key: data[key] for key in data.files}
        except (OSError, ValueError) as error:
            raise ConfigurationError(
                MSG_STATE_UNREADABLE.format(path=path, problem=error)
            ) from None
        if str(stored.get("fingerprint", "")) != fingerprint:
            raise ConfigurationError(MSG_STATE_MISMATCH.format(path=path))
        return cls(
            x_adv=torch.from_numpy(stored["x_adv"]).to(like.device, like.dtype),
            robust=torch.from_numpy(stored["robust"]),
            broken_by=torch.from_numpy(stored["broken_by"]),
            stage=int(stored["stage"]),
            rows=torch.from_numpy(stored["rows"]) if bool(stored["has_rows"]) else None,
            done=int(stored["done"]),
            attacked=stored["attacked"],
            robust_after=stored["robust_after"],
            forwards=stored["forwards"],
            backwards=stored["backwards"],
            seconds=stored["seconds"],
        )
