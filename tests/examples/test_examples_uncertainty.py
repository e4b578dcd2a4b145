"""The OOD and conformal examples on the real demo tasks: clearly above the sample files."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest

from trustlab.tasks import build_task, load_spec, open_task

EXAMPLES = Path(__file__).parents[2] / "examples"

pytestmark = pytest.mark.slow


def _build(name: str, root: Path) -> Path:
    spec = load_spec(Path(str(resources.files("trustlab.tasks") / "specs" / f"{name}.yaml")))
    return build_task(spec, tasks_dir=root).paths.root


def _example(name: str) -> ModuleType:
    sys.path.insert(0, str(EXAMPLES))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(EXAMPLES))


def test_energy_and_knn_beat_the_random_sample(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    task_dir = _build("ood-digits", tmp_path_factory.mktemp("ood-demo"))
    example = _example("ood_energy_knn")
    scores = example.detect(task_dir / "public")
    task = open_task(task_dir)
    sample_csv = task_dir / "public" / "sample_submission.csv"
    sample = task.kind.score(task.spec, paths=task.paths, file=sample_csv, fields={})
    assert abs(sample.private_score - 0.5) < 0.1
    for name in ("energy", "knn"):
        csv = tmp_path / f"{name}.csv"
        example.write_csv(csv, scores["ids"], scores[name])
        result = task.kind.score(task.spec, paths=task.paths, file=csv, fields={})
        assert result.public_score > 0.9 and result.private_score > 0.9, name
        assert result.private_metrics["fpr@95"] < 0.5


def test_conformal_sets_are_valid_and_far_above_the_sample(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    task_dir = _build("conformal-digits", tmp_path_factory.mktemp("conformal-demo"))
    example = _example("conformal_sets")
    sets = example.prediction_sets(task_dir / "public", alpha=0.05)
    task = open_task(task_dir)
    sample_csv = task_dir / "public" / "sample_submission.csv"
    sample = task.kind.score(task.spec, paths=task.paths, file=sample_csv, fields={})
    assert sample.public_score == 0.0 and sample.private_score == 0.0
    for name in ("lac", "aps", "raps"):
        csv = tmp_path / f"{name}.csv"
        example.write_csv(csv, sets["ids"], sets[name])
        result = task.kind.score(task.spec, paths=task.paths, file=csv, fields={})
        assert result.private_metrics["valid"] == 1.0, name
        assert result.public_score > 0.6 and result.private_score > 0.6, name
