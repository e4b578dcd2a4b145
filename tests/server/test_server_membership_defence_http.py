"""The membership-defence kind end to end over HTTP: task page, weights intake, scoring."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import ArenaHarness, detail, install_task

from trustlab.core.models import build_model
from trustlab.tasks import build_task, parse_spec

TASK = "defence-http"
SPEC: dict[str, Any] = {
    "id": TASK,
    "kind": "membership-defence",
    "title": "Membership defence over HTTP",
    "description": "Train digits without leaking them.",
    "dataset": "digits",
    "seed": 3,
    "max_file_size": "2MB",
    "params": {
        "n_train": 200,
        "n_test": 300,
        "reference": {"n_models": 4, "epochs": 10, "lr": 0.002},
        "leakage_bound": 0.05,
        "penalty": 3.0,
        "bootstrap_resamples": 10,
    },
}


@pytest.fixture(scope="module")
def defence_http_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("defence-http")
    return build_task(parse_spec(copy.deepcopy(SPEC)), tasks_dir=root).paths.root


@pytest.fixture
def defence_arena(
    start_arena: Callable[[], ArenaHarness], defence_http_dir: Path, data_dir: Path
) -> ArenaHarness:
    install_task(
        defence_http_dir,
        data_dir,
        cooldown={"accepted": 0, "failed": 0},
        limits={"daily": None, "total": None},
    )
    return start_arena()


def test_membership_defence_task_end_to_end(defence_arena: ArenaHarness) -> None:
    client = defence_arena.client
    task_info = client.get(f"/api/v1/tasks/{TASK}").json()
    assert task_info["kind"] == "membership-defence" and task_info["metric"] == "score"
    assert task_info["higher_is_better"] is True
    assert task_info["metrics"] == ["score", "accuracy", "leakage"]
    assert task_info["description"].startswith("Train digits without leaking them.")
    assert "Score = test accuracy - 3 x max(0, leakage - 0.05)" in task_info["description"]
    (field,) = task_info["submission_rules"]["form_fields"]
    assert field["name"] == "model_name" and field["choices"] == ["digits-cnn"]
    names = {a["name"] for a in task_info["artifacts"]}
    assert names == {"README.md", "sample_submission.safetensors", "train.npz"}

    url = f"/api/v1/tasks/{TASK}/artifacts"
    headers = defence_arena.headers()
    sample = client.get(f"{url}/sample_submission.safetensors", headers=headers)
    assert sample.status_code == 200
    for hidden in ("candidates.npz", "population.npz", "manifest.json"):
        assert client.get(f"{url}/{hidden}", headers=headers).status_code == 404

    response = defence_arena.submit(
        TASK, sample.content, filename="model.safetensors", data={"model_name": "digits-cnn"}
    )
    assert response.status_code == 202, response.text
    submission = response.json()["submission_id"]
    assert defence_arena.score_all() == 1
    info = client.get(f"/api/v1/submissions/{submission}", headers=headers).json()
    assert info["status"] == "scored", info
    metrics = info["metrics"]
    assert info["public_score"] == metrics["score"]
    expected = metrics["accuracy"] - 3.0 * max(0.0, metrics["leakage"] - 0.05)
    assert metrics["score"] == pytest.approx(expected)
    assert {"lira_tpr@0.01", "rmia_tpr@0.01", "lira_auc", "accuracy_ci95"} <= set(metrics)
    assert info["private_score"] is None

    board = client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert [e["team"] for e in board["entries"]] == ["alpha"]
    assert board["entries"][0]["public_score"] == info["public_score"]


def test_weights_of_another_architecture_are_refused(
    defence_arena: ArenaHarness, tmp_path: Path
) -> None:
    mlp = build_model("mlp", arguments={"in_features": 64, "num_classes": 10})
    path = tmp_path / "mlp.pt"
    torch.save(mlp.state_dict(), path)
    wrong = defence_arena.submit(
        TASK, path.read_bytes(), filename="mlp.pt", data={"model_name": "digits-cnn"}
    )
    assert wrong.status_code == 400
    assert "do not fit architecture 'digits-cnn'" in detail(wrong)
    unlisted = defence_arena.submit(
        TASK, path.read_bytes(), filename="mlp.pt", data={"model_name": "mlp"}
    )
    assert unlisted.status_code == 422 and "use one of: digits-cnn" in detail(unlisted)
    assert defence_arena.count_rows() == 0
    assert defence_arena.stored_files() == []
