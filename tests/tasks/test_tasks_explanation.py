"""The explanation kind end to end: build, validate and score maps, refuse bad files."""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.tasks import build_task, get_kind, list_kinds, parse_spec, score_submission
from trustlab.tasks.base import ScoreResult, TaskPaths
from trustlab.tasks.explanation import MSG_DATASET

SPEC: dict[str, Any] = {
    "id": "explanation-small",
    "kind": "explanation",
    "title": "A small explanation task",
    "description": "Point at the digit.",
    "dataset": "digits-canvas",
    "seed": 1,
    "params": {
        "canvas": {"size": 16, "noise": 0.3},
        "architecture_arguments": {"width": 8},
        "epochs": 2,
        "n_explain": 60,
        "deletion_steps": 8,
        "bootstrap_resamples": 20,
        "reference_methods": [],
    },
}


def _spec(**params: Any) -> Any:
    data = copy.deepcopy(SPEC)
    data["params"].update(params)
    return parse_spec(data)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_task(_spec(), tasks_dir=tmp_path_factory.mktemp("explanation")).paths.root


def _ids(task_dir: Path) -> np.ndarray:
    with np.load(task_dir / "public" / "inputs.npz") as data:
        return data["ids"]


def _write(path: Path, maps: dict[str, np.ndarray]) -> Path:
    np.savez(path, **maps)
    return path


def _score(task_dir: Path, file: Path) -> ScoreResult:
    return ScoreResult.from_json(score_submission(str(task_dir), str(file), {}))


def _validate(task_dir: Path, file: Path) -> dict[str, Any]:
    return get_kind("explanation").validate(
        _spec(), paths=TaskPaths(task_dir), file=file, fields={}
    )


def test_the_kind_is_registered() -> None:
    assert "explanation" in list_kinds()


def test_build_publishes_the_model_and_inputs_and_hides_the_masks(task_dir: Path) -> None:
    public = sorted(p.name for p in (task_dir / "public").iterdir())
    assert public == ["README.md", "inputs.npz", "model.safetensors", "sample_submission.npz"]
    with np.load(task_dir / "public" / "inputs.npz") as data:
        assert data["x"].shape == (60, 1, 16, 16) and data["ids"].tolist() == list(range(60))
    with np.load(task_dir / "hidden" / "answers.npz") as data:
        assert data["masks"].shape == (60, 16, 16) and data["public"].sum() == pytest.approx(
            18, abs=3
        )
    readme = (task_dir / "public" / "README.md").read_text()
    assert "Score = (pointing-game hit rate + relevance-mass accuracy) / 2" in readme
    assert "| random (`sample_submission.npz`) | 0." in readme


@pytest.mark.slow
def test_the_sample_scores_near_chance_and_the_masks_score_one(
    task_dir: Path, tmp_path: Path
) -> None:
    sample = task_dir / "public" / "sample_submission.npz"
    assert _validate(task_dir, sample) == {"maps": 60}
    random = _score(task_dir, sample)
    share = 64 / 256
    for metrics in (random.public_metrics, random.private_metrics):
        assert abs(metrics["relevance_mass"] - share) < 0.05
        assert metrics["score"] < 0.45
        assert {"pointing_game", "relevance_rank", "deletion_auc", "score_ci95"} <= set(metrics)
    with np.load(task_dir / "hidden" / "answers.npz") as data:
        masks = data["masks"].astype(np.float32)
    oracle = _write(tmp_path / "oracle.npz", {str(i): masks[i][None] for i in range(60)})
    perfect = _score(task_dir, oracle)
    assert perfect.public_score == 1.0 and perfect.private_score == 1.0
    assert perfect.public_metrics["relevance_rank"] == 1.0
    assert _score(task_dir, sample) == random, "scoring is deterministic"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_npz", "not a NumPy .npz archive"),
        ("missing", "1 input id(s) have no map, e.g. 59"),
        ("extra", "Id 60 is not one of the input ids"),
        ("bad_key", "Entry 'maps' is not an input id"),
        ("nan", "The map for id 3 holds NaN"),
        ("inf", "The map for id 3 holds an infinity"),
        ("int", "The map for id 3 has dtype int64; maps must be floating-point"),
        (
            "shape",
            "The map for id 3 has shape (16, 15); it must have shape (16, 16) or (1, 16, 16)",
        ),
        ("object", "The map for id 3 cannot be read"),
        ("not_npy", "Entry 'notes.txt' of the archive is not a .npy array"),
    ],
)
def test_bad_files_are_refused_with_the_reason(
    task_dir: Path, tmp_path: Path, case: str, message: str
) -> None:
    maps = {str(i): np.zeros((16, 16), np.float32) for i in _ids(task_dir).tolist()}
    path = tmp_path / f"{case}.npz"
    if case == "not_npz":
        path.write_text("id,map\n0,1\n")
    elif case == "not_npy":
        np.savez(path, **maps)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("notes.txt", "hello")
    elif case == "object":
        maps["3"] = np.array([{"a": 1}], dtype=object)
        np.savez(path, **maps)
    else:
        if case == "missing":
            del maps["59"]
        elif case == "extra":
            maps["60"] = np.zeros((16, 16), np.float32)
        elif case == "bad_key":
            maps["maps"] = np.zeros((16, 16), np.float32)
        elif case == "nan":
            maps["3"][2, 2] = np.nan
        elif case == "inf":
            maps["3"][2, 2] = np.inf
        elif case == "int":
            maps["3"] = np.zeros((16, 16), np.int64)
        elif case == "shape":
            maps["3"] = np.zeros((16, 15), np.float32)
        np.savez(path, **maps)
    with pytest.raises(SubmissionError) as info:
        _validate(task_dir, path)
    assert message in str(info.value)


def test_an_oversized_entry_is_refused_before_it_is_unpacked(
    task_dir: Path, tmp_path: Path
) -> None:
    maps = {str(i): np.zeros((16, 16), np.float32) for i in _ids(task_dir).tolist()}
    maps["5"] = np.zeros((400, 400), np.float32)
    path = _write(tmp_path / "big.npz", maps)
    with pytest.raises(SubmissionError, match="The map for id 5 takes"):
        _validate(task_dir, path)


def test_spec_problems_are_named() -> None:
    data = copy.deepcopy(SPEC)
    data["dataset"] = "digits"
    with pytest.raises(ConfigurationError) as info:
        parse_spec(data)
    assert MSG_DATASET.format(want="digits-canvas", got="digits") in str(info.value)
    with pytest.raises(ConfigurationError, match="'guided' is not an attribution method"):
        _spec(reference_methods=["guided"])
