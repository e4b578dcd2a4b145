"""Additive random noise on the victim's outputs."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from trustlab.core.params import Boolean, Constraint, Real, Seed, validate_params
from trustlab.extraction._hashing import stable_key, stable_normal
from trustlab.extraction.defences.base import OutputDefence
from trustlab.extraction.defences.registry import register_defence

__all__ = ["AdditiveNoise"]


@register_defence("noise")
class AdditiveNoise(OutputDefence):
    """Add Gaussian noise to each output row; keep probability vectors valid.

    Each row ``p`` becomes ``p + scale * z`` with ``z`` standard normal. For probabilities
    (``probabilities=True``, the default) the result is clipped at zero and divided by its sum,
    so it is again a probability vector; a row whose every noisy value is <= 0 (possible only
    for a huge ``scale``) is returned unchanged. For embeddings, pass
    ``probabilities=False``: the noise is added and nothing else is done.

    The noise of a row is a deterministic function of ``seed``, the ``client_id`` and the bytes
    of that row's input (as float32), drawn from SHAKE-256 rather than torch's or NumPy's
    generators. Asking the same question twice therefore gives the same answer, so a client
    cannot average the noise away by repeating a query, and the same query from two clients
    gets independent noise. The top-1 label can change when the two largest probabilities are
    closer than a few ``scale``.

    Threat model: the client sees noisy, still valid outputs; the defender trades accuracy of
    the returned confidences for extraction fidelity.

    Parameters
    ----------
    scale : float
        Standard deviation of the noise, > 0.
    seed : int, default=0
        Secret seed of the noise, in [0, 2**32 - 1].
    probabilities : bool, default=True
        Clip and renormalise the noisy rows (for classifiers); ``False`` for embeddings.

    Examples
    --------
    >>> import torch
    >>> noise = AdditiveNoise(scale=0.05, seed=1)
    >>> probs = torch.tensor([[0.2, 0.8]])
    >>> out = noise.apply(outputs=probs, inputs=torch.ones(1, 3), client_id="a")
    >>> bool(torch.isclose(out.sum(), torch.tensor(1.0)))
    True
    >>> bool((out == noise.apply(outputs=probs, inputs=torch.ones(1, 3), client_id="a")).all())
    True
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "scale": Real(low=0, closed="neither"),
        "seed": Seed,
        "probabilities": Boolean(),
    }

    def __init__(self, *, scale: float, seed: int = 0, probabilities: bool = True) -> None:
        self.scale = scale
        self.seed = seed
        self.probabilities = probabilities
        validate_params(self)

    @property
    def probabilities_only(self) -> bool:
        return self.probabilities

    @property
    def returns_probabilities(self) -> bool:
        return self.probabilities

    def _defend(
        self, *, outputs: torch.Tensor, inputs: torch.Tensor, client_id: str
    ) -> torch.Tensor:
        rows = inputs.detach().cpu().reshape(inputs.shape[0], -1)
        rows_np = np.ascontiguousarray(rows.to(torch.float32).numpy(), dtype="<f4")
        n_outputs = outputs.shape[1]
        noise = np.stack(
            [
                stable_normal(
                    stable_key("additive-noise", self.seed, client_id, row.tobytes()),
                    n_outputs,
                )
                for row in rows_np
            ]
        )
        values = outputs.detach().cpu().to(torch.float64)
        noisy = values + self.scale * torch.from_numpy(noise)
        if not self.probabilities:
            return noisy
        clipped = noisy.clamp_min(0.0)
        total = clipped.sum(dim=1, keepdim=True)
        return torch.where(total > 0, clipped / total.clamp_min(1e-300), values)
