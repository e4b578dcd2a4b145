"""Hand-made reference sets: known membership, logits chosen by the test."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trustlab.privacy import ReferenceModels


def hand_reference(membership: list[list[int]]) -> ReferenceModels:
    """A reference set with the given membership (models x population) and dummy models."""
    rows = np.array(membership, dtype=bool)
    return ReferenceModels(
        architecture="mlp",
        arguments={"in_features": 1, "num_classes": 2, "hidden": []},
        membership=rows,
        models=[nn.Linear(1, 2) for _ in rows],
        recipe={},
        population={"n": rows.shape[1], "sha256": ""},
    )


def binary_logits(confidences: list[float] | np.ndarray) -> torch.Tensor:
    """Logits ``[0, c]``: with label 1 the logit-scaled confidence is exactly ``c``."""
    values = torch.as_tensor(np.asarray(confidences, dtype=np.float64))
    return torch.stack([torch.zeros_like(values), values], dim=-1)
