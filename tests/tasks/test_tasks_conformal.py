"""The conformal kind end to end: build, validate and score, on a small digits task."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.tasks import build_task, get_kind, open_task, parse_spec, score_submission
from trustlab.tasks.base import ScoreResult
from trustlab.tasks.conformal import read_sets

SPEC: dict[str, Any] = {
    "id": "conformal-small",
    "kind": "conformal",
    "title": "A small conformal task",
    "description": "Cover the truth.",
    "dataset": "digits",
    "seed": 1,
    "params": {
        "n_train": 100,
        "n_calibration": 200,
        "n_test": 300,
        "epochs": 5,
        "alpha": 0.1,
        "tolerance": 0.03,
        "bootstrap_resamples": 20,
    },
}


def _spec(**params: Any) -> Any:
    data = copy.deepcopy(SPEC)
    data["params"].update(params)
    return parse_spec(data)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_task(_spec(), tasks_dir=tmp_path_factory.mktemp("conformal")).paths.root


def _truth(task_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(task_dir / "hidden" / "answers.npz") as answers:
        return answers["ids"], answers["y"], answers["public"]


def _write_lists(path: Path, ids: np.ndarray, sets: np.ndarray) -> Path:
    rows = [
        f"{i}," + " ".join(map(str, np.flatnonzero(s)))
        for i, s in zip(ids.tolist(), sets, strict=True)
    ]
    path.write_text("\n".join(["id,labels", *rows]) + "\n")
    return path


def _score(task_dir: Path, file: Path) -> ScoreResult:
    return ScoreResult.from_json(score_submission(str(task_dir), str(file), {}))


def test_spec_defaults_and_rule_text() -> None:
    spec = _spec()
    kind = get_kind("conformal")
    assert spec.metric == "score" and kind.higher_is_better
    rules = kind.rules_text(spec)
    assert "1 - 0.1 - 0.03 = 0.87" in rules and "score 0" in rules
    with pytest.raises(ConfigurationError, match="alpha \\+ tolerance must be below 1"):
        _spec(alpha=0.6, tolerance=0.5)


def test_read_sets_in_both_formats() -> None:
    ids = np.arange(3)
    lists = read_sets("id,labels\n0,1 2\n1,\n2,0\n", ids=ids, n_classes=3)
    matrix = read_sets("id,0,1,2\n0,0,1,1\n1,0,0,0\n2,1,0,0\n", ids=ids, n_classes=3)
    for i in ids.tolist():
        np.testing.assert_array_equal(lists[i], matrix[i])
    assert lists[0].tolist() == [False, True, True] and not lists[1].any()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("id,set\n0,1\n", "Line 1 must be the header 'id,labels'"),
        ("id,labels\n0,1 9\n1,0\n2,0\n", "Line 2: '9' in the set of id 0 is not a class"),
        ("id,labels\n0,1 x\n", "Line 2: 'x' in the set of id 0 is not a class"),
        ("id,labels\n0,1 1\n", "Line 2: class 1 appears twice in the set of id 0"),
        ("id,0,1,2\n0,0,2,1\n", "Line 2: column 1 of id 0 holds '2'"),
        ("id,0,1,2\n0,0,1\n", "Line 2: expected 4 comma-separated values, found 3"),
        ("id,labels\n0,1\n0,2\n", "Line 3: id 0 appears a second time"),
        ("id,labels\n7,1\n", "Line 2: id 7 is not a test id"),
        ("id,labels\n0,1\n", "2 test id\\(s\\) have no row"),
    ],
)
def test_bad_files_are_refused_naming_the_row(text: str, message: str) -> None:
    with pytest.raises(SubmissionError, match=message):
        read_sets(text, ids=np.arange(3), n_classes=3)


@pytest.mark.slow
def test_scores_full_exact_and_undercovering_sets(task_dir: Path, tmp_path: Path) -> None:
    ids, y, _public = _truth(task_dir)
    full = _score(task_dir, task_dir / "public" / "sample_submission.csv")
    assert full.public_score == 0.0 and full.private_metrics["coverage"] == 1.0
    exact = np.eye(10, dtype=bool)[y]
    perfect = _score(task_dir, _write_lists(tmp_path / "exact.csv", ids, exact))
    assert perfect.private_score == pytest.approx(0.9)
    assert perfect.private_metrics["valid"] == 1.0
    # Drop the true label of 20% of the examples: coverage 0.8 < 0.87, so the score is 0.
    under = exact.copy()
    under[np.arange(len(y)) % 5 == 0] = False
    refused = _score(task_dir, _write_lists(tmp_path / "under.csv", ids, under))
    assert refused.public_score == 0.0 and refused.private_score == 0.0
    assert refused.private_metrics["valid"] == 0.0
    assert refused.private_metrics["coverage"] < 0.87
    assert {"coverage_ci95", "mean_set_size_ci95"} <= set(refused.private_metrics)


@pytest.mark.slow
def test_split_conformal_sets_are_valid_and_beat_the_sample(task_dir: Path, tmp_path: Path) -> None:
    import torch

    import trustlab
    from trustlab.core.training import predict_logits
    from trustlab.uncertainty import LAC

    model = trustlab.load_model(task_dir / "public" / "model.safetensors")
    with (
        np.load(task_dir / "public" / "calibration.npz") as cal,
        np.load(task_dir / "public" / "test.npz") as test,
    ):
        p_cal = torch.softmax(predict_logits(model, cal["x"]).double(), 1).numpy()
        p_test = torch.softmax(predict_logits(model, test["x"]).double(), 1).numpy()
        sets = LAC(alpha=0.1).fit(probs=p_cal, y=cal["y"]).predict(probs=p_test)
        ids = test["ids"]
    result = _score(task_dir, _write_lists(tmp_path / "lac.csv", ids, sets))
    assert result.private_metrics["valid"] == 1.0 and result.private_score > 0.3
    task = open_task(task_dir)
    summary = task.kind.validate(task.spec, paths=task.paths, file=tmp_path / "lac.csv", fields={})
    assert summary == {"rows": len(ids)}
