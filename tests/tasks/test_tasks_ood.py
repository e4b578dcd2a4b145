"""The ood-detection kind end to end: build, validate and score, on a small digits task."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.tasks import build_task, get_kind, open_task, parse_spec, score_submission
from trustlab.tasks.base import ScoreResult
from trustlab.tasks.ood_detection import synthetic_inputs

SPEC: dict[str, Any] = {
    "id": "ood-small",
    "kind": "ood-detection",
    "title": "A small OOD task",
    "description": "Spot the strangers.",
    "dataset": "digits",
    "seed": 1,
    "params": {
        "in_classes": [0, 1, 2],
        "n_train": 150,
        "n_test_in": 90,
        "n_test_ood_classes": 60,
        "n_test_synthetic": 30,
        "epochs": 8,
        "bootstrap_resamples": 20,
    },
}


def _spec(**params: Any) -> Any:
    data = copy.deepcopy(SPEC)
    data["params"].update(params)
    return parse_spec(data)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_task(_spec(), tasks_dir=tmp_path_factory.mktemp("ood")).paths.root


def _answers(task_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(task_dir / "hidden" / "answers.npz") as answers:
        return answers["ids"], answers["is_ood"]


def _write(path: Path, ids: np.ndarray, scores: np.ndarray) -> Path:
    lines = ["id,score"] + [
        f"{i},{s!r}" for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _score(task_dir: Path, file: Path) -> ScoreResult:
    return ScoreResult.from_json(score_submission(str(task_dir), str(file), {}))


def test_spec_defaults_and_metrics() -> None:
    spec = _spec()
    assert spec.metric == "auroc"
    assert get_kind("ood-detection").metric_names(spec) == [
        "auroc",
        "tnr@95",
        "aupr_in",
        "aupr_out",
    ]
    with pytest.raises(ConfigurationError, match=r"params\.in_classes"):
        _spec(in_classes=[1, 1])


@pytest.mark.slow
def test_build_publishes_the_artifacts(task_dir: Path) -> None:
    public = sorted(p.name for p in (task_dir / "public").iterdir())
    assert public == [
        "README.md",
        "model.safetensors",
        "sample_submission.csv",
        "test.npz",
        "train.npz",
    ]
    with (
        np.load(task_dir / "public" / "test.npz") as test,
        np.load(task_dir / "public" / "train.npz") as train,
    ):
        assert test["x"].shape == (180, 1, 8, 8) and set(train["y"].tolist()) == {0, 1, 2}
        assert float(test["x"].min()) >= 0.0 and float(test["x"].max()) <= 1.0
    _ids, is_ood = _answers(task_dir)
    assert is_ood.sum() == 90
    readme = (task_dir / "public" / "README.md").read_text()
    assert "higher means more likely out-of-distribution" in readme


@pytest.mark.slow
def test_perfect_random_and_inverted_scores(task_dir: Path, tmp_path: Path) -> None:
    ids, is_ood = _answers(task_dir)
    perfect = _score(task_dir, _write(tmp_path / "p.csv", ids, is_ood.astype(float)))
    assert perfect.public_score == 1.0 and perfect.private_score == 1.0
    assert perfect.private_metrics["fpr@95"] == 0.0
    assert perfect.private_metrics["tnr@95"] == 1.0
    inverted = _score(task_dir, _write(tmp_path / "i.csv", ids, -is_ood.astype(float)))
    assert inverted.private_score == 0.0
    sample = _score(task_dir, task_dir / "public" / "sample_submission.csv")
    assert abs(sample.private_score - 0.5) < 0.15
    assert {"auroc_ci95", "fpr@95_ci95", "aupr_in", "aupr_out"} <= set(sample.private_metrics)


@pytest.mark.slow
def test_energy_scores_beat_the_sample(task_dir: Path, tmp_path: Path) -> None:
    import trustlab
    from trustlab.uncertainty import Energy

    model = trustlab.load_model(task_dir / "public" / "model.safetensors")
    with np.load(task_dir / "public" / "test.npz") as test:
        ids, scores = test["ids"], Energy().score(model=model, x=test["x"])
    result = _score(task_dir, _write(tmp_path / "e.csv", ids, scores))
    assert result.private_score > 0.75


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty"),
        ("id,value\n0,1\n", "Line 1 must be the header 'id,score'"),
        ("id,score\n0,abc\n", "Line 2: score 'abc' for id 0 is not a number"),
        ("id,score\n0,nan\n", "Line 2: score for id 0 is nan"),
        ("id,score\n0,1\n0,2\n", "Line 3: id 0 appears a second time"),
        ("id,score\n99999,1\n", "Line 2: id 99999 is not a test id"),
        ("id,score\nx,1\n", "Line 2: id 'x' is not an integer"),
        ("id,score\n0,1,2\n", "Line 2: expected 2 comma-separated values, found 3"),
        ("id,score\n0,1\n", "179 test id(s) have no row"),
    ],
)
def test_bad_files_are_refused_naming_the_row(
    task_dir: Path, tmp_path: Path, text: str, message: str
) -> None:
    task = open_task(task_dir)
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SubmissionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        task.kind.validate(task.spec, paths=task.paths, file=path, fields={})


def test_synthetic_inputs_are_images_in_range() -> None:
    rng = np.random.default_rng(0)
    x = synthetic_inputs(10, shape=(1, 8, 8), rng=rng)
    assert x.shape == (10, 1, 8, 8) and x.min() >= 0.0 and x.max() <= 1.0
    assert (x[5:] == 1.0).any(axis=(1, 2, 3)).all()  # strokes at full intensity
    again = synthetic_inputs(10, shape=(1, 8, 8), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(x, again)
