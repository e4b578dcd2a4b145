"""Small audit inputs: a two-class tabular MLP trained in well under a second, its data with
member flags and a sensitive attribute, saved as trustlab safetensors and .npz."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from trustlab.core.data import save_npz
from trustlab.core.models import build_model
from trustlab.core.weights import save_model

N = 240
FEATURES = 5


@dataclass(frozen=True)
class Tabular:
    model: Path
    data: Path
    x: np.ndarray
    y: np.ndarray
    member: np.ndarray
    groups: np.ndarray


def tabular_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(N, FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] + rng.normal(0, 0.1, N) > 0.65).astype(np.int64)
    member = np.arange(N) % 2 == 0
    groups = np.where(rng.random(N) < 0.4, "f", "m")
    return x, y, member, groups


def _fit(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, steps: int = 60) -> None:
    """Full-batch Adam: a few milliseconds for this MLP (the fixture is not about training)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimiser.step()
    model.eval()


@pytest.fixture(scope="session")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> Tabular:
    folder = tmp_path_factory.mktemp("audit-inputs")
    x, y, member, groups = tabular_arrays()
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": FEATURES, "hidden": [16]})
    _fit(model, x[member], y[member])
    save_model(model, folder / "mlp.safetensors")
    save_npz(
        folder / "data.npz",
        x=x,
        y=y,
        member=member.astype(np.int64),
        groups=groups,
    )
    return Tabular(folder / "mlp.safetensors", folder / "data.npz", x, y, member, groups)
