"""The robustness kind end to end over HTTP: submit weights, score them, refuse bad files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import ArenaHarness, detail, install_task
from hostile import write_hostile_state_dict
from robustness_task_support import baseline_file, built_task_dir, load_baseline, random_file

from trustlab.core.models import build_model

# Each test builds a robustness task (trains its baseline) and serves it.
pytestmark = pytest.mark.slow

TASK = "robustness-small"


@pytest.fixture
def harness(start_arena: Callable[[], ArenaHarness], data_dir: Path) -> ArenaHarness:
    install_task(built_task_dir(), data_dir)
    return start_arena()


def submit(harness: ArenaHarness, content: bytes, *, name: str, fields: dict[str, str]) -> Any:
    return harness.submit(TASK, content, filename=name, data=fields)


def test_the_task_lists_its_architectures(harness: ArenaHarness) -> None:
    task = harness.client.get(f"/api/v1/tasks/{TASK}").json()
    assert task["kind"] == "robustness" and task["metric"] == "score"
    fields = task["submission_rules"]["form_fields"]
    assert [(f["name"], f["choices"]) for f in fields] == [("model_name", ["digits-cnn"])]
    names = {a["name"] for a in task["artifacts"]}
    assert names == {"README.md", "train.npz", "sample_submission.safetensors"}


@pytest.mark.slow
def test_the_baseline_is_scored_with_its_sanity_flags(harness: ArenaHarness) -> None:
    response = submit(
        harness,
        baseline_file().read_bytes(),
        name="model.safetensors",
        fields={"model_name": "digits-cnn"},
    )
    assert response.status_code == 202, response.text
    url = f"/api/v1/submissions/{response.json()['submission_id']}"
    assert harness.score_all() == 1
    info = harness.client.get(url, headers=harness.headers()).json()
    assert info["status"] == "scored", info
    metrics = info["metrics"]
    assert info["public_score"] == pytest.approx(
        0.5 * metrics["clean_accuracy"] + 0.5 * metrics["robust_accuracy"]
    )
    assert metrics["robust_accuracy"] < metrics["clean_accuracy"]
    assert {"broken_by_fgsm", "broken_by_pgd", "forwards", "sanity_flags"} <= set(metrics)
    assert metrics["sanity_flags"] == []
    assert info["notes"] == [
        "Sanity checks passed (eval_mode, deterministic, logits, gradients, black_box, "
        "eps_monotone, large_eps; 64 examples)."
    ]
    board = harness.client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert len(board["entries"]) == 1


def test_a_model_under_the_floor_fails_with_its_accuracy(harness: ArenaHarness) -> None:
    response = submit(
        harness,
        random_file().read_bytes(),
        name="random.safetensors",
        fields={"model_name": "digits-cnn"},
    )
    assert response.status_code == 202, response.text
    assert harness.score_all() == 1
    url = f"/api/v1/submissions/{response.json()['submission_id']}"
    info = harness.client.get(url, headers=harness.headers()).json()
    assert info["status"] == "failed" and info["public_score"] is None
    assert re.match(r"Clean accuracy 0\.\d{4} on the hidden evaluation set is below", info["error"])


def test_a_hostile_pickle_is_refused_and_nothing_runs(
    harness: ArenaHarness, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = write_hostile_state_dict(tmp_path / "evil.pt", model=load_baseline(), marker=marker)
    response = submit(
        harness, path.read_bytes(), name="evil.pt", fields={"model_name": "digits-cnn"}
    )
    assert response.status_code == 400
    assert "cannot be used" in detail(response)
    assert not marker.exists()
    assert harness.count_rows() == 0 and harness.stored_files() == []


def test_a_wrong_architecture_names_the_parameter(harness: ArenaHarness, tmp_path: Path) -> None:
    path = tmp_path / "five.pt"
    torch.save(build_model("digits-cnn", arguments={"num_classes": 5}).state_dict(), path)
    response = submit(
        harness, path.read_bytes(), name="five.pt", fields={"model_name": "digits-cnn"}
    )
    assert response.status_code == 400
    assert "fc2.weight: expected (10, 128), got (5, 128)" in detail(response)
    assert harness.count_rows() == 0 and harness.stored_files() == []


@pytest.mark.parametrize("fields", [{}, {"model_name": "resnet18"}])
def test_a_missing_or_unknown_model_name_is_422(
    harness: ArenaHarness, fields: dict[str, str]
) -> None:
    response = submit(harness, baseline_file().read_bytes(), name="m.safetensors", fields=fields)
    assert response.status_code == 422
    assert "model_name" in detail(response)
    assert harness.count_rows() == 0
