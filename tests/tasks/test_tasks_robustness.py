"""The robustness kind: build, validation of submitted weights, and scoring."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hostile import write_hostile_state_dict
from robustness_task_support import (
    SMALL_ROBUSTNESS_SPEC,
    baseline_file,
    built_task_dir,
    load_baseline,
    random_file,
    robust_file,
)

from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.models import build_model
from trustlab.core.training import predict_logits
from trustlab.core.weights import save_model
from trustlab.tasks import BuiltTask, build_task, get_kind, open_task, parse_spec
from trustlab.tasks.robustness import MSG_FLOOR, make_cascade

FIELDS = {"model_name": "digits-cnn"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Score on one thread, as the workers' limited processes do; a small model gains nothing
    from more threads on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task() -> BuiltTask:
    return open_task(built_task_dir())


@pytest.fixture(scope="module")
def baseline_result(task: BuiltTask) -> Any:
    return task.kind.score(task.spec, paths=task.paths, file=baseline_file(), fields=FIELDS)


def hidden(task: BuiltTask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(task.paths.hidden / "eval.npz") as data:
        return data["x"], data["y"], data["public"]


def test_the_build_publishes_training_data_and_a_baseline(task: BuiltTask) -> None:
    public = sorted(p.name for p in task.paths.public.iterdir())
    assert public == ["README.md", "sample_submission.safetensors", "train.npz"]
    x_eval, y_eval, is_public = hidden(task)
    with np.load(task.paths.public / "train.npz") as data:
        x_train = data["x"]
    assert len(x_eval) == 200 and x_eval.shape[1:] == (1, 8, 8)
    assert len(x_train) + len(x_eval) == 1797
    # No evaluation image is published for training.
    train_rows = {row.tobytes() for row in x_train}
    assert sum(row.tobytes() in train_rows for row in x_eval) <= 5  # digits has a few duplicates
    assert is_public.sum() == 60
    readme = (task.paths.public / "README.md").read_text()
    assert "Linf ball of radius\neps = 0.1" in readme and "model_name" in readme
    assert "0.5 x clean accuracy + 0.5 x robust" in readme
    accuracy = (predict_logits(load_baseline(), x_eval).argmax(1).numpy() == y_eval).mean()
    assert accuracy > 0.9
    assert task.kind.form_fields_for(task.spec)[0].choices == ("digits-cnn",)
    assert task.spec.metric == "score"


@pytest.mark.slow
def test_the_build_is_reproducible(tmp_path: Path) -> None:
    data = copy.deepcopy(SMALL_ROBUSTNESS_SPEC)
    data["params"]["baseline_epochs"] = 1
    first = build_task(parse_spec(data), tasks_dir=tmp_path / "a").paths
    second = build_task(parse_spec(data), tasks_dir=tmp_path / "b").paths
    for name in ("public/train.npz", "public/sample_submission.safetensors", "hidden/eval.npz"):
        assert (first.root / name).read_bytes() == (second.root / name).read_bytes()


def test_good_weights_are_accepted_as_safetensors_or_pt(task: BuiltTask, tmp_path: Path) -> None:
    summary = task.kind.validate(task.spec, paths=task.paths, file=baseline_file(), fields=FIELDS)
    n_parameters = sum(p.numel() for p in build_model("digits-cnn").parameters())
    assert summary == {"model_name": "digits-cnn", "parameters": n_parameters}
    path = tmp_path / "model.pt"
    torch.save(load_baseline().state_dict(), path)
    assert task.kind.validate(task.spec, paths=task.paths, file=path, fields=FIELDS) == summary


def refused(task: BuiltTask, file: Path, fields: dict[str, str] = FIELDS) -> str:
    with pytest.raises(SubmissionError) as info:
        task.kind.validate(task.spec, paths=task.paths, file=file, fields=fields)
    return str(info.value)


def test_a_wrong_architecture_names_the_parameter(task: BuiltTask, tmp_path: Path) -> None:
    path = tmp_path / "five.pt"
    torch.save(build_model("digits-cnn", arguments={"num_classes": 5}).state_dict(), path)
    message = refused(task, path)
    assert "do not fit architecture 'digits-cnn'" in message
    assert "fc2.weight: expected (10, 128), got (5, 128)" in message
    mlp = tmp_path / "mlp.pt"
    torch.save(build_model("mlp", arguments={"in_features": 64}).state_dict(), mlp)
    assert "missing keys" in refused(task, mlp)


def test_a_hostile_pickle_is_refused_without_running(task: BuiltTask, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_hostile_state_dict(tmp_path / "evil.pt", model=load_baseline(), marker=marker)
    message = refused(task, path)
    assert "cannot be used" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "fields", "expected"),
    [
        (b"", FIELDS, "cannot be used"),
        (b"not weights at all" * 10, FIELDS, "cannot be used"),
        (None, {}, "'model_name' is required"),
        (None, {"model_name": "resnet18"}, "not accepted by this task"),
    ],
)
def test_garbage_and_bad_fields_are_refused(
    task: BuiltTask, tmp_path: Path, content: bytes | None, fields: dict[str, str], expected: str
) -> None:
    path = baseline_file()
    if content is not None:
        path = tmp_path / "garbage.safetensors"
        path.write_bytes(content)
    assert expected in refused(task, path, fields)


def test_the_baseline_is_scored(task: BuiltTask, baseline_result: Any) -> None:
    x_eval, y_eval, is_public = hidden(task)
    correct = predict_logits(load_baseline(), x_eval).argmax(1).numpy() == y_eval
    for part, mask in (("public", is_public), ("private", ~is_public)):
        metrics = getattr(baseline_result, f"{part}_metrics")
        assert metrics["clean_accuracy"] == pytest.approx(correct[mask].mean())
        assert metrics["n_examples"] == int(mask.sum())
        assert metrics["robust_accuracy"] <= metrics["clean_accuracy"]
        assert metrics["score"] == pytest.approx(
            0.5 * metrics["clean_accuracy"] + 0.5 * metrics["robust_accuracy"]
        )
        # The cascade: every example lost between clean and robust was broken by one attack.
        broken = metrics["broken_by_fgsm"] + metrics["broken_by_pgd"]
        assert broken == pytest.approx(metrics["clean_accuracy"] - metrics["robust_accuracy"])
        low, high = metrics["robust_accuracy_ci95"]
        assert low <= metrics["robust_accuracy"] <= high
        assert metrics["forwards"] > 0 and metrics["backwards"] > 0
        assert isinstance(metrics["sanity_flags"], list)
    assert baseline_result.public_score == baseline_result.public_metrics["score"]
    # An undefended CNN loses a good part of its accuracy at eps = 0.1.
    assert baseline_result.private_metrics["robust_accuracy"] < 0.8
    assert baseline_result.notes


@pytest.mark.slow
def test_an_adversarially_trained_model_scores_higher(
    task: BuiltTask, baseline_result: Any
) -> None:
    robust = task.kind.score(task.spec, paths=task.paths, file=robust_file(), fields=FIELDS)
    for part in ("public_metrics", "private_metrics"):
        gain = (
            getattr(robust, part)["robust_accuracy"]
            - getattr(baseline_result, part)["robust_accuracy"]
        )
        assert gain > 0.1, part
    assert robust.private_score > baseline_result.private_score


def test_a_model_under_the_floor_fails_with_its_accuracy(task: BuiltTask) -> None:
    x_eval, y_eval, _ = hidden(task)
    from trustlab.core.weights import load_model

    accuracy = float(
        (predict_logits(load_model(random_file()), x_eval).argmax(1).numpy() == y_eval).mean()
    )
    with pytest.raises(SubmissionError) as info:
        task.kind.score(task.spec, paths=task.paths, file=random_file(), fields=FIELDS)
    assert str(info.value) == MSG_FLOOR.format(accuracy=accuracy, floor=0.5)
    assert re.search(r"Clean accuracy 0\.\d{4} ", str(info.value))


@pytest.mark.slow
def test_a_model_that_masks_its_gradients_trips_the_checks(
    task: BuiltTask, baseline_result: Any, tmp_path: Path
) -> None:
    # Scaling the logits by 1e4 keeps every prediction but saturates the softmax: the
    # cross-entropy's input gradient is exactly zero, so FGSM is blind. The sanity checks say
    # so, and PGD on the margin loss (the default) is not fooled.
    model = load_baseline()
    with torch.no_grad():
        model.fc2.weight.mul_(1e4)
        model.fc2.bias.mul_(1e4)
    path = tmp_path / "masked.safetensors"
    save_model(model, path)
    result = task.kind.score(task.spec, paths=task.paths, file=path, fields=FIELDS)
    assert "gradients" in result.public_metrics["sanity_flags"]
    assert any("'gradients' raised a flag" in note for note in result.notes)
    assert result.public_metrics["broken_by_fgsm"] == 0.0
    for part in ("public_metrics", "private_metrics"):
        masked = getattr(result, part)["robust_accuracy"]
        assert masked == pytest.approx(getattr(baseline_result, part)["robust_accuracy"], abs=0.05)
    assert baseline_result.public_metrics["sanity_flags"] == []


def test_the_cascade_only_attacks_what_is_still_robust(task: BuiltTask) -> None:
    from trustlab.robustness import AutoAttack

    x_eval, y_eval, _ = hidden(task)
    x, y = torch.from_numpy(x_eval[:80]), torch.from_numpy(y_eval[:80])
    model = load_baseline()
    clean = predict_logits(model, x).argmax(1) == y
    attacks = make_cascade(task.kind.params_model.model_validate(task.spec.params), seed=0)
    assert [attack.name for attack in attacks] == ["fgsm", "pgd"]
    result = AutoAttack(eps=0.1, version="custom", attacks=attacks).generate(model=model, x=x, y=y)
    fgsm, pgd = result.stages
    assert fgsm.attacked == int(clean.sum())
    assert pgd.attacked == fgsm.attacked - fgsm.broken
    assert int(result.robust.sum()) == pgd.attacked - pgd.broken
    assert not result.robust[~clean].any()


def spec_problems(**params: Any) -> str:
    data = copy.deepcopy(SMALL_ROBUSTNESS_SPEC)
    data["params"].update(params)
    with pytest.raises(ConfigurationError) as info:
        parse_spec(data)
    return str(info.value)


def test_autoattack_stands_for_its_standard_cascade() -> None:
    data = copy.deepcopy(SMALL_ROBUSTNESS_SPEC)
    data["params"]["attacks"] = [
        {"name": "fgsm"},
        {"name": "autoattack", "options": {"version": "standard"}},
    ]
    spec = parse_spec(data)
    params = get_kind("robustness").params_model.model_validate(spec.params)
    attacks = make_cascade(params, seed=0)
    assert [a.name for a in attacks] == ["fgsm", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert all(a.eps == 0.1 and a.norm.value == "Linf" for a in attacks)
    assert attacks[1].steps == 100 and attacks[4].n_queries == 5000  # type: ignore[attr-defined]


def test_spec_errors_name_the_field() -> None:
    assert "field 'params.attacks[0]': attack 'nope'" in spec_problems(attacks=[{"name": "nope"}])
    assert "do not set 'eps' here" in spec_problems(
        attacks=[{"name": "pgd", "options": {"eps": 0.3}}]
    )
    assert "'steps' parameter of PGD" in spec_problems(
        attacks=[{"name": "pgd", "options": {"steps": 0}}]
    )
    assert "'pgd' would run twice" in spec_problems(
        attacks=[{"name": "pgd"}, {"name": "pgd", "options": {"steps": 5}}]
    )
    assert "'apgd-ce' would run twice" in spec_problems(
        attacks=[{"name": "apgd-ce"}, {"name": "autoattack"}]
    )
    assert "takes only the option 'version'" in spec_problems(
        attacks=[{"name": "autoattack", "options": {"version": "fast"}}]
    )
    assert "needs target classes" in spec_problems(attacks=[{"name": "pgd-targeted"}])
    assert "field 'params.norm'" in spec_problems(norm="L1")
    assert "unknown architecture 'nope'" in spec_problems(architectures=[{"name": "nope"}])
    assert "field 'params.clean_floor'" in spec_problems(clean_floor=1.5)
    assert "field 'params.bogus': unknown field" in spec_problems(bogus=1)
    assert "at least one of 'clean' and 'robust'" in spec_problems(
        weights={"clean": 0, "robust": 0}
    )
    assert get_kind("robustness").metric_names(open_task(built_task_dir()).spec)[0] == "score"
