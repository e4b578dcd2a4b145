"""The ood-detection and conformal kinds end to end over HTTP: task page, intake, scoring."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import ArenaHarness, detail, install_task

from trustlab.tasks import build_task, parse_spec

OOD = "ood-http"
CONFORMAL = "conformal-http"
SPECS: dict[str, dict[str, Any]] = {
    OOD: {
        "id": OOD,
        "kind": "ood-detection",
        "title": "OOD detection over HTTP",
        "description": "Spot the strangers.",
        "dataset": "digits",
        "seed": 4,
        "params": {
            "in_classes": [0, 1, 2],
            "n_train": 120,
            "n_test_in": 60,
            "n_test_ood_classes": 40,
            "n_test_synthetic": 20,
            "epochs": 5,
            "bootstrap_resamples": 10,
        },
    },
    CONFORMAL: {
        "id": CONFORMAL,
        "kind": "conformal",
        "title": "Conformal prediction over HTTP",
        "description": "Cover the truth.",
        "dataset": "digits",
        "seed": 4,
        "params": {
            "n_train": 100,
            "n_calibration": 150,
            "n_test": 200,
            "epochs": 3,
            "alpha": 0.1,
            "tolerance": 0.03,
            "bootstrap_resamples": 10,
        },
    },
}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("uncertainty-http")
    return {
        task: build_task(parse_spec(copy.deepcopy(spec)), tasks_dir=root).paths.root
        for task, spec in SPECS.items()
    }


@pytest.fixture
def arena(
    start_arena: Callable[[], ArenaHarness], built_dirs: dict[str, Path], data_dir: Path
) -> ArenaHarness:
    for task_dir in built_dirs.values():
        install_task(
            task_dir,
            data_dir,
            cooldown={"accepted": 0, "failed": 0},
            limits={"daily": None, "total": None},
        )
    return start_arena()


def _scored(arena: ArenaHarness, response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    submission = response.json()["submission_id"]
    assert arena.score_all() == 1
    info: dict[str, Any] = arena.client.get(
        f"/api/v1/submissions/{submission}", headers=arena.headers()
    ).json()
    assert info["status"] == "scored", info
    return info


def test_ood_task_end_to_end(arena: ArenaHarness, built_dirs: dict[str, Path]) -> None:
    client = arena.client
    info = client.get(f"/api/v1/tasks/{OOD}").json()
    assert info["kind"] == "ood-detection" and info["metric"] == "auroc"
    assert "FPR at 95% TPR" in info["description"]
    names = {a["name"] for a in info["artifacts"]}
    assert names == {
        "README.md",
        "model.safetensors",
        "sample_submission.csv",
        "test.npz",
        "train.npz",
    }
    url = f"/api/v1/tasks/{OOD}/artifacts"
    sample = client.get(f"{url}/sample_submission.csv", headers=arena.headers())
    assert sample.status_code == 200
    assert client.get(f"{url}/answers.npz", headers=arena.headers()).status_code == 404

    random = _scored(arena, arena.submit(OOD, sample.content))
    assert 0.2 < random["public_score"] < 0.8
    with np.load(built_dirs[OOD] / "hidden" / "answers.npz") as answers:
        ids, is_ood = answers["ids"], answers["is_ood"]
    oracle = "id,score\n" + "".join(f"{i},{s}\n" for i, s in zip(ids, is_ood, strict=True))
    perfect = _scored(arena, arena.submit(OOD, oracle))
    assert perfect["public_score"] == 1.0 and perfect["metrics"]["fpr@95"] == 0.0

    bad = arena.submit(OOD, "id,score\n0,1\n0,2\n")
    assert bad.status_code == 400 and "Line 3: id 0 appears a second time" in detail(bad)
    board = client.get(f"/api/v1/tasks/{OOD}/leaderboard").json()
    assert board["entries"][0]["public_score"] == 1.0


def test_conformal_task_end_to_end(arena: ArenaHarness, built_dirs: dict[str, Path]) -> None:
    client = arena.client
    info = client.get(f"/api/v1/tasks/{CONFORMAL}").json()
    assert info["kind"] == "conformal" and info["metric"] == "score"
    assert "1 - alpha - tolerance = 1 - 0.1 - 0.03 = 0.87" in info["description"]
    assert "score 0" in info["description"]
    url = f"/api/v1/tasks/{CONFORMAL}/artifacts"
    sample = client.get(f"{url}/sample_submission.csv", headers=arena.headers())
    full = _scored(arena, arena.submit(CONFORMAL, sample.content))
    assert full["public_score"] == 0.0 and full["metrics"]["coverage"] == 1.0

    with np.load(built_dirs[CONFORMAL] / "hidden" / "answers.npz") as answers:
        ids, y = answers["ids"], answers["y"]
    exact = "id,labels\n" + "".join(f"{i},{k}\n" for i, k in zip(ids, y, strict=True))
    best = _scored(arena, arena.submit(CONFORMAL, exact))
    assert best["public_score"] == pytest.approx(0.9)
    wrong = "id,labels\n" + "".join(f"{i},{(k + 1) % 10}\n" for i, k in zip(ids, y, strict=True))
    refused = _scored(arena, arena.submit(CONFORMAL, wrong))
    assert refused["public_score"] == 0.0 and refused["metrics"]["valid"] == 0.0

    bad = arena.submit(CONFORMAL, "id,labels\n0,3 12\n")
    assert bad.status_code == 400
    assert "Line 2: '12' in the set of id 0 is not a class" in detail(bad)
    assert arena.count_rows() == 3
