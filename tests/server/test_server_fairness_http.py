"""The fairness kind end to end over HTTP: task page, weights intake, scoring, leaderboard."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import ArenaHarness, detail, install_task
from hostile import write_hostile_state_dict

from trustlab.core.models import build_model
from trustlab.tasks import build_task, parse_spec

TASK = "fair-http"
SPEC: dict[str, Any] = {
    "id": TASK,
    "kind": "fairness",
    "title": "Fair incomes over HTTP",
    "description": "Predict incomes fairly.",
    "dataset": "adult",
    "seed": 1,
    "max_file_size": "200KB",
    "params": {
        "sensitive": ["sex"],
        "gap_bound": 0.1,
        "penalty": {"kind": "linear", "slope": 3.0},
        "architectures": [
            {"name": "logreg", "architecture": "mlp", "arguments": {"hidden": []}},
            {"name": "mlp-16", "architecture": "mlp", "arguments": {"hidden": [16]}},
        ],
        "n_train": 1000,
        "n_test": 1500,
        "baseline": {"epochs": 3},
        "bootstrap_resamples": 20,
    },
}


@pytest.fixture(scope="module")
def fair_http_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fair-http")
    return build_task(parse_spec(copy.deepcopy(SPEC)), tasks_dir=root).paths.root


@pytest.fixture
def fair_arena(
    start_arena: Callable[[], ArenaHarness], fair_http_dir: Path, data_dir: Path
) -> ArenaHarness:
    install_task(
        fair_http_dir,
        data_dir,
        cooldown={"accepted": 0, "failed": 0},
        limits={"daily": None, "total": None},
    )
    return start_arena()


def test_fairness_task_end_to_end(fair_arena: ArenaHarness, fair_http_dir: Path) -> None:
    client = fair_arena.client
    task_info = client.get(f"/api/v1/tasks/{TASK}").json()
    assert task_info["kind"] == "fairness" and task_info["metric"] == "score"
    assert task_info["higher_is_better"] is True
    assert task_info["metrics"] == ["score", "accuracy", "dp_gap", "eo_gap"]
    assert task_info["description"].startswith("Predict incomes fairly.")
    assert "accuracy - 3 x max(0, demographic-parity gap - 0.1)" in task_info["description"]
    (field,) = task_info["submission_rules"]["form_fields"]
    assert field["name"] == "model_name" and field["choices"] == ["logreg", "mlp-16"]
    names = {a["name"] for a in task_info["artifacts"]}
    assert names == {"README.md", "encoding.json", "sample_submission.safetensors", "train.npz"}

    url = f"/api/v1/tasks/{TASK}/artifacts"
    sample = client.get(f"{url}/sample_submission.safetensors", headers=fair_arena.headers())
    assert sample.status_code == 200
    assert client.get(f"{url}/test.npz", headers=fair_arena.headers()).status_code == 404

    response = fair_arena.submit(
        TASK, sample.content, filename="model.safetensors", data={"model_name": "logreg"}
    )
    assert response.status_code == 202, response.text
    submission = response.json()["submission_id"]
    assert fair_arena.score_all() == 1
    info = client.get(f"/api/v1/submissions/{submission}", headers=fair_arena.headers()).json()
    assert info["status"] == "scored", info
    metrics = info["metrics"]
    assert info["public_score"] == metrics["score"]
    expected = metrics["accuracy"] - 3.0 * max(0.0, metrics["dp_gap"] - 0.1)
    assert metrics["score"] == pytest.approx(expected)
    assert {"accuracy_ci95", "dp_gap_ci95", "selection_rate[Female]"} <= set(metrics)
    assert info["private_score"] is None

    board = client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert [e["team"] for e in board["entries"]] == ["alpha"]
    assert board["entries"][0]["public_score"] == info["public_score"]
    page = client.get(f"/leaderboard_page?task_id={TASK}").text
    assert "demographic-parity gap - 0.1" in page


def test_bad_weights_are_refused_and_leave_nothing(
    fair_arena: ArenaHarness, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    logreg = build_model("mlp", arguments={"in_features": 89, "hidden": []})
    evil = write_hostile_state_dict(tmp_path / "evil.pt", model=logreg, marker=marker)
    hostile = fair_arena.submit(
        TASK, evil.read_bytes(), filename="evil.pt", data={"model_name": "logreg"}
    )
    assert hostile.status_code == 400
    assert "Refused to load" in detail(hostile)
    assert not marker.exists()

    wide = build_model("mlp", arguments={"in_features": 89, "hidden": [16]})
    path = tmp_path / "wide.pt"
    torch.save(wide.state_dict(), path)
    wrong = fair_arena.submit(
        TASK, path.read_bytes(), filename="wide.pt", data={"model_name": "logreg"}
    )
    assert wrong.status_code == 400
    message = detail(wrong)
    assert "do not fit architecture 'logreg'" in message
    assert "hidden.0.weight" in message and "head.weight: expected (2, 89), got (2, 16)" in message

    missing = fair_arena.submit(TASK, path.read_bytes(), filename="wide.pt")
    assert missing.status_code == 422 and "'model_name' is required" in detail(missing)
    unlisted = fair_arena.submit(
        TASK, path.read_bytes(), filename="wide.pt", data={"model_name": "resnet18"}
    )
    assert unlisted.status_code == 422 and "logreg, mlp-16" in detail(unlisted)

    assert fair_arena.count_rows() == 0
    assert fair_arena.stored_files() == []


EO_TASK = "fair-http-compas"
EO_SPEC: dict[str, Any] = {
    "id": EO_TASK,
    "kind": "fairness",
    "title": "Fair recidivism over HTTP",
    "description": "Predict recidivism with equalized odds.",
    "dataset": "compas",
    "seed": 1,
    "max_file_size": "2MB",
    "params": {
        "sensitive": ["sex"],
        "criterion": "equalized_odds",
        "gap_bound": 0.1,
        "penalty": {"kind": "linear", "slope": 3.0},
        "architectures": [
            {"name": "logreg", "architecture": "mlp", "arguments": {"hidden": []}},
            {
                "name": "tabular",
                "architecture": "tabular",
                "arguments": {"numeric_features": [0, 1, 2, 3, 4], "width": 16, "n_blocks": 1},
            },
        ],
        "baseline": {"epochs": 3},
        "bootstrap_resamples": 20,
    },
}


@pytest.fixture(scope="module")
def eo_http_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fair-http-eo")
    return build_task(parse_spec(copy.deepcopy(EO_SPEC)), tasks_dir=root).paths.root


@pytest.fixture
def eo_arena(
    start_arena: Callable[[], ArenaHarness], eo_http_dir: Path, data_dir: Path
) -> ArenaHarness:
    install_task(
        eo_http_dir,
        data_dir,
        cooldown={"accepted": 0, "failed": 0},
        limits={"daily": None, "total": None},
    )
    return start_arena()


def test_equalized_odds_task_scores_a_tabular_model(eo_arena: ArenaHarness, tmp_path: Path) -> None:
    client = eo_arena.client
    task_info = client.get(f"/api/v1/tasks/{EO_TASK}").json()
    assert "accuracy - 3 x max(0, equalized-odds gap - 0.1)" in task_info["description"]
    (field,) = task_info["submission_rules"]["form_fields"]
    assert field["choices"] == ["logreg", "tabular"]

    torch.manual_seed(0)
    model = build_model(
        "tabular",
        arguments={
            "in_features": 18,
            "numeric_features": [0, 1, 2, 3, 4],
            "width": 16,
            "n_blocks": 1,
        },
    )
    path = tmp_path / "tabular.pt"
    torch.save(model.state_dict(), path)
    response = eo_arena.submit(
        EO_TASK, path.read_bytes(), filename="tabular.pt", data={"model_name": "tabular"}
    )
    assert response.status_code == 202, response.text
    submission = response.json()["submission_id"]
    assert eo_arena.score_all() == 1
    info = client.get(f"/api/v1/submissions/{submission}", headers=eo_arena.headers()).json()
    assert info["status"] == "scored", info
    metrics = info["metrics"]
    expected = metrics["accuracy"] - 3.0 * max(0.0, metrics["eo_gap"] - 0.1)
    assert metrics["score"] == pytest.approx(expected)
    assert {"accuracy_ci95", "eo_gap_ci95"} <= set(metrics)
