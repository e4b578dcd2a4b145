"""The explanation example on the real demo task: IG and Grad-CAM maps beat random maps."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import pytest

from trustlab.tasks import build_task, load_spec, open_task

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def demo_task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = resources.files("trustlab.tasks") / "specs" / "explanation-digits.yaml"
    spec = load_spec(Path(str(path)))
    return build_task(spec, tasks_dir=tmp_path_factory.mktemp("demo")).paths.root


@pytest.mark.slow
def test_integrated_gradients_and_grad_cam_beat_random_maps(
    demo_task: Path, tmp_path: Path
) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import explain_integrated_gradients as example
    finally:
        sys.path.remove(str(EXAMPLES))
    task = open_task(demo_task)
    sample = demo_task / "public" / "sample_submission.npz"
    random = task.kind.score(task.spec, paths=task.paths, file=sample, fields={})
    results = {}
    for method in ("integrated_gradients", "grad_cam"):
        maps = example.attribution_maps(demo_task / "public", method=method)
        path = example.write_maps(tmp_path / f"{method}.npz", maps)
        results[method] = task.kind.score(task.spec, paths=task.paths, file=path, fields={})
    # Random maps score the digit box's share of the canvas (64 / 576 = 0.11) on average.
    assert abs(random.private_metrics["relevance_mass"] - 64 / 576) < 0.03
    assert random.private_score < 0.2
    ig = results["integrated_gradients"]
    assert ig.private_score > 0.8 and ig.public_score > 0.8
    assert ig.private_metrics["deletion_auc"] < random.private_metrics["deletion_auc"]
    assert results["grad_cam"].private_score > random.private_score + 0.15
