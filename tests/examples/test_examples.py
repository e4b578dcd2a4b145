"""The membership example on the real demo task: calibrated loss beats random guessing."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from trustlab.core.metrics import auc, tpr_at_fpr
from trustlab.tasks import build_task, load_spec, open_task

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def demo_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = load_spec(Path(str(resources.files("trustlab.tasks") / "specs" / "mia-digits.yaml")))
    return build_task(spec, tasks_dir=tmp_path_factory.mktemp("demo")).paths.root


@pytest.mark.slow
def test_loss_threshold_attack_beats_random_on_the_demo_task(
    demo_task: Path, tmp_path: Path
) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import membership_loss_threshold as example
    finally:
        sys.path.remove(str(EXAMPLES))
    scores = example.attack(demo_task / "public", n_models=8)
    task = open_task(demo_task)
    results = {}
    for name in ("plain", "calibrated"):
        csv = tmp_path / f"{name}.csv"
        example.write_csv(csv, scores["ids"], scores[name])
        results[name] = task.kind.score(task.spec, paths=task.paths, file=csv, fields={})
    random_csv = demo_task / "public" / "sample_submission.csv"
    random = task.kind.score(task.spec, paths=task.paths, file=random_csv, fields={})

    assert abs(random.private_score - 0.05) < 0.05
    # Calibrated loss threshold: clearly above the 0.05 of random guessing on both parts.
    assert results["calibrated"].public_score > 0.1
    assert results["calibrated"].private_score > 0.1
    # The plain loss beats chance on AUC (it is weak at low FPR, as expected).
    assert results["plain"].private_metrics["auc"] > 0.55

    with np.load(demo_task / "hidden" / "answers.npz") as answers:
        truth = dict(zip(answers["ids"].tolist(), answers["member"].tolist(), strict=True))
    member = np.array([truth[i] for i in scores["ids"].tolist()])
    assert auc(y_true=member, scores=scores["calibrated"]) > 0.58
    assert tpr_at_fpr(y_true=member, scores=scores["calibrated"], fpr=0.05) > 0.1
