"""The explanation kind end to end over HTTP: task page, map intake, scoring, refusals."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import ArenaHarness, detail, install_task

from trustlab.tasks import build_task, parse_spec

TASK = "explanation-http"
SPEC: dict[str, Any] = {
    "id": TASK,
    "kind": "explanation",
    "title": "Explanations over HTTP",
    "description": "Point at the digit.",
    "dataset": "digits-canvas",
    "seed": 4,
    "max_file_size": "2MB",
    "params": {
        "canvas": {"size": 16},
        "architecture_arguments": {"width": 8},
        "epochs": 2,
        "n_explain": 40,
        "deletion_steps": 8,
        "bootstrap_resamples": 10,
        "reference_methods": [],
    },
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def explanation_http_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explanation-http")
    return build_task(parse_spec(copy.deepcopy(SPEC)), tasks_dir=root).paths.root


@pytest.fixture
def explanation_arena(
    start_arena: Callable[[], ArenaHarness], explanation_http_dir: Path, data_dir: Path
) -> ArenaHarness:
    install_task(
        explanation_http_dir,
        data_dir,
        cooldown={"accepted": 0, "failed": 0},
        limits={"daily": None, "total": None},
    )
    return start_arena()


def _npz(maps: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **maps)
    return buffer.getvalue()


def test_explanation_task_end_to_end(explanation_arena: ArenaHarness) -> None:
    client = explanation_arena.client
    info = client.get(f"/api/v1/tasks/{TASK}").json()
    assert info["kind"] == "explanation" and info["metric"] == "score"
    assert info["metrics"] == [
        "score",
        "pointing_game",
        "relevance_mass",
        "relevance_rank",
        "deletion_auc",
    ]
    assert "Score = (pointing-game hit rate + relevance-mass accuracy) / 2" in info["description"]
    names = {a["name"] for a in info["artifacts"]}
    assert names == {"README.md", "inputs.npz", "model.safetensors", "sample_submission.npz"}

    url = f"/api/v1/tasks/{TASK}/artifacts"
    headers = explanation_arena.headers()
    assert client.get(f"{url}/answers.npz", headers=headers).status_code == 404
    inputs = np.load(io.BytesIO(client.get(f"{url}/inputs.npz", headers=headers).content))
    x = inputs["x"]
    # Maps that point at the brightest pixels: a crude explanation that still beats chance.
    maps = {str(i): x[k, 0] for k, i in enumerate(inputs["ids"].tolist())}
    response = explanation_arena.submit(TASK, _npz(maps), filename="maps.npz")
    assert response.status_code == 202, response.text
    sample = client.get(f"{url}/sample_submission.npz", headers=headers).content
    assert explanation_arena.submit(TASK, sample, filename="sample.npz").status_code == 202
    assert explanation_arena.score_all() == 2
    submission = response.json()["submission_id"]
    scored = client.get(f"/api/v1/submissions/{submission}", headers=headers).json()
    assert scored["status"] == "scored", scored
    metrics = scored["metrics"]
    assert scored["public_score"] == metrics["score"]
    expected = (metrics["pointing_game"] + metrics["relevance_mass"]) / 2
    assert metrics["score"] == pytest.approx(expected)
    board = client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert [e["team"] for e in board["entries"]] == ["alpha"]


def test_bad_map_files_get_a_400_naming_the_problem(explanation_arena: ArenaHarness) -> None:
    ids = list(range(40))
    good = {str(i): np.zeros((16, 16), np.float32) for i in ids}
    cases = {
        "missing": ({k: v for k, v in good.items() if k != "7"}, "e.g. 7"),
        "extra": ({**good, "99": np.zeros((16, 16), np.float32)}, "Id 99 is not one of"),
        "nan": ({**good, "2": np.full((16, 16), np.nan, np.float32)}, "id 2 holds NaN"),
        "dtype": ({**good, "2": np.zeros((16, 16), np.int32)}, "id 2 has dtype int32"),
        "shape": ({**good, "2": np.zeros((3, 16, 16), np.float32)}, "id 2 has shape (3, 16, 16)"),
    }
    for name, (maps, message) in cases.items():
        response = explanation_arena.submit(TASK, _npz(maps), filename=f"{name}.npz")
        assert response.status_code == 400, (name, response.text)
        assert message in detail(response), name
    assert explanation_arena.count_rows() == 0
    assert explanation_arena.stored_files() == []
