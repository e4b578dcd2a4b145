"""The audit on real models: the example's user-trained digits CNN and the demo task's target."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from trustlab.audit import run
from trustlab.core.data import save_npz

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_example_trains_a_model_and_audits_it(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import audit_digits as example
    finally:
        sys.path.remove(str(EXAMPLES))
    weights, data = example.train_and_save(tmp_path, epochs=8)
    report = run(weights, data, profile="quick", eps=example.EPS, out_dir=tmp_path / "report")
    status = {section.name: section.status for section in report.sections}
    assert status["performance"] == status["robustness"] == status["privacy"] == "ok", [
        s.reason for s in report.sections
    ]
    assert status["fairness"] == "ok"
    assert report.section("performance").metrics["accuracy"] > 0.8
    robustness = report.section("robustness").metrics
    assert robustness["robust_accuracy"] < robustness["clean_accuracy"]
    assert robustness["sanity_passed"], robustness["sanity_failed"]
    assert robustness["corruptions"]["clean_accuracy"] > 0.8
    explanations = report.section("explanations")
    assert explanations.status == "ok", explanations.reason
    assert set(explanations.metrics["model_randomisation"]) == {"saliency", "integrated_gradients"}
    assert len(explanations.figures) == 2
    assert (tmp_path / "report" / "report.html").is_file()


def test_the_demo_task_target(small_task_dir: Path, tmp_path: Path) -> None:
    public, hidden = small_task_dir / "public", small_task_dir / "hidden"
    with (
        np.load(public / "candidates.npz") as candidates,
        np.load(hidden / "answers.npz") as answers,
    ):
        assert (candidates["ids"] == answers["ids"]).all()
        save_npz(
            tmp_path / "candidates.npz",
            x=candidates["x"],
            y=candidates["y"],
            member=answers["member"].astype(np.int64),
        )
    report = run(public / "target.safetensors", tmp_path / "candidates.npz", eps=0.1)
    privacy = report.section("privacy")
    assert privacy.status == "ok", privacy.reason
    auc = privacy.metrics["attacks"]["loss_threshold"]["auc"]["estimate"]
    assert auc > 0.5
    assert report.section("fairness").status == "not_available"
