"""A small built robustness task and models to submit to it, made once per test process.

The task and the models are cached at module level, so the task-kind tests and the HTTP tests
share one build (fixtures of two test files would build it twice).
"""

from __future__ import annotations

import atexit
import copy
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from specs import digits_spec
from torch import nn

SMALL_ROBUSTNESS_SPEC: dict[str, Any] = digits_spec(
    task_id="robustness-small",
    kind="robustness",
    title="Small robustness task",
    deadline=None,
    max_file_size="2MB",
    params={
        "eps": 0.1,
        "n_eval": 200,
        "baseline_epochs": 8,
        "bootstrap_resamples": 50,
    },
)

EPS = 0.1


@functools.lru_cache(maxsize=1)
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="trustlab-robustness-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.lru_cache(maxsize=1)
def built_task_dir() -> Path:
    """The small robustness task, built once."""
    from trustlab.tasks import build_task, parse_spec

    built = build_task(
        parse_spec(copy.deepcopy(SMALL_ROBUSTNESS_SPEC)), tasks_dir=_root() / "tasks"
    )
    return built.paths.root


def baseline_file() -> Path:
    return built_task_dir() / "public" / "sample_submission.safetensors"


def load_baseline() -> nn.Module:
    from trustlab.core.weights import load_model

    return load_model(baseline_file())


def train_data() -> tuple[torch.Tensor, torch.Tensor]:
    with np.load(built_task_dir() / "public" / "train.npz") as data:
        return torch.from_numpy(data["x"]), torch.from_numpy(data["y"])


@functools.lru_cache(maxsize=1)
def robust_file() -> Path:
    """The baseline after a short PGD adversarial fine-tuning, as safetensors."""
    from trustlab.core.weights import save_model
    from trustlab.robustness.training import PGDAdversarialTraining

    model = load_baseline()
    x, y = train_data()
    PGDAdversarialTraining(eps=EPS, steps=5, epochs=2, lr=2e-3).fit(model=model, x=x, y=y)
    path = _root() / "robust.safetensors"
    save_model(model, path)
    return path


@functools.lru_cache(maxsize=1)
def random_file() -> Path:
    """A digits CNN with random weights: it fails any sensible clean-accuracy floor."""
    from trustlab.core.models import build_model
    from trustlab.core.weights import save_model

    torch.manual_seed(123)
    path = _root() / "random.safetensors"
    save_model(build_model("digits-cnn"), path)
    return path
