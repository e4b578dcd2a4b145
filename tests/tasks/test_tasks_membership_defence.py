"""The membership-defence kind end to end: build, validate and score, on a small digits task."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.models import build_model
from trustlab.core.seeding import seed_everything
from trustlab.core.training import fit_classifier
from trustlab.core.weights import save_model
from trustlab.tasks import build_task, get_kind, list_kinds, parse_spec, score_submission
from trustlab.tasks.base import ScoreResult, TaskPaths
from trustlab.tasks.membership_defence import (
    MSG_ATTACK_OPTION,
    MSG_ATTACK_RESERVED,
    MSG_DUPLICATE_ATTACK,
    REFERENCE_FOLDER,
)

SPEC: dict[str, Any] = {
    "id": "defence-small",
    "kind": "membership-defence",
    "title": "A small membership defence",
    "description": "Leak little.",
    "dataset": "digits",
    "seed": 2,
    "params": {
        "n_train": 200,
        "n_test": 300,
        "reference": {"n_models": 4, "epochs": 15, "lr": 0.002},
        "leakage_bound": 0.02,
        "penalty": 2.0,
        "bootstrap_resamples": 20,
    },
}
FIELDS = {"model_name": "digits-cnn"}


def _spec(**params: Any) -> Any:
    data = copy.deepcopy(SPEC)
    data["params"].update(params)
    return parse_spec(data)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("defence")
    return build_task(_spec(), tasks_dir=root).paths.root


def _score(task_dir: Path, file: Path) -> ScoreResult:
    return ScoreResult.from_json(score_submission(str(task_dir), str(file), FIELDS))


def _train_data(task_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(task_dir / "public" / "train.npz") as data:
        return data["x"], data["y"]


def test_the_kind_is_registered() -> None:
    assert "membership-defence" in list_kinds()


def test_build_publishes_the_training_set_and_hides_the_rest(task_dir: Path) -> None:
    public = sorted(p.name for p in (task_dir / "public").iterdir())
    assert public == ["README.md", "sample_submission.safetensors", "train.npz"]
    hidden = task_dir / "hidden"
    assert (hidden / REFERENCE_FOLDER / "manifest.json").is_file()
    manifest = json.loads((hidden / REFERENCE_FOLDER / "manifest.json").read_text())
    assert manifest["architecture"] == "digits-cnn"
    assert len(manifest["files"]) == 4
    x, y = _train_data(task_dir)
    assert x.shape == (200, 1, 8, 8) and y.shape == (200,)
    with np.load(hidden / "candidates.npz") as data:
        member, public_mask = data["member"].astype(bool), data["public"].astype(bool)
        assert np.array_equal(data["x"][:200], x)
    assert member.sum() == 200 and (~member).sum() == 300
    # Stratified: about 30% of members and of non-members are public.
    assert public_mask[member].sum() == 60 and public_mask[~member].sum() == 90
    with np.load(hidden / "population.npz") as data:
        assert len(data["x"]) == 1797 - 500


def test_the_readme_states_the_rule_and_the_baseline(task_dir: Path) -> None:
    text = (task_dir / "public" / "README.md").read_text()
    assert "Score = test accuracy - 2 x max(0, leakage - 0.02)" in text
    assert "4 reference models" in text
    assert "`lira`" in text and "`rmia`" in text
    assert "Its public result: accuracy 0." in text


def test_the_sample_submission_scores_as_is(task_dir: Path) -> None:
    sample = task_dir / "public" / "sample_submission.safetensors"
    summary = get_kind("membership-defence").validate(
        _spec(), paths=TaskPaths(task_dir), file=sample, fields=FIELDS
    )
    assert summary["model_name"] == "digits-cnn" and summary["parameters"] > 0
    result = _score(task_dir, sample)
    for metrics in (result.public_metrics, result.private_metrics):
        assert 0.7 < metrics["accuracy"] <= 1.0
        assert metrics["leakage"] == max(metrics["lira_tpr@0.01"], metrics["rmia_tpr@0.01"])
        expected = metrics["accuracy"] - 2.0 * max(0.0, metrics["leakage"] - 0.02)
        assert metrics["score"] == pytest.approx(expected)
        assert {"lira_auc", "rmia_auc", "accuracy_ci95"} <= set(metrics)
    assert result.public_metrics["n_non_members"] == 90
    assert result.private_metrics["n_non_members"] == 210
    assert result.public_score == result.public_metrics["score"]
    again = _score(task_dir, sample)
    assert again == result


def test_scoring_reuses_the_reference_models(
    task_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustlab.privacy import ReferenceModels

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("reference models are trained once, at build time")

    monkeypatch.setattr(ReferenceModels, "train", refuse)
    sample = task_dir / "public" / "sample_submission.safetensors"
    kind = get_kind("membership-defence")
    result = kind.score(_spec(), paths=TaskPaths(task_dir), file=sample, fields=FIELDS)
    assert result.public_score <= 1.0


@pytest.mark.slow
def test_a_regularised_model_leaks_less_than_an_overfit_one(task_dir: Path, tmp_path: Path) -> None:
    x, y = _train_data(task_dir)
    results = {}
    for name, epochs, weight_decay in (("overfit", 60, 0.0), ("regularised", 4, 1e-2)):
        seed_everything(0)
        model = build_model("digits-cnn")
        fit_classifier(model, x, y, epochs=epochs, lr=2e-3, weight_decay=weight_decay, seed=0)
        path = tmp_path / f"{name}.safetensors"
        save_model(model, path)
        result = _score(task_dir, path)
        results[name] = {
            part: metrics["lira_auc"]
            for part, metrics in (
                ("public", result.public_metrics),
                ("private", result.private_metrics),
            )
        }
    assert results["regularised"]["private"] < results["overfit"]["private"]


def test_bad_submissions_are_refused(task_dir: Path, tmp_path: Path) -> None:
    kind = get_kind("membership-defence")
    sample = task_dir / "public" / "sample_submission.safetensors"
    with pytest.raises(SubmissionError, match="'model_name' is required"):
        kind.validate(_spec(), paths=TaskPaths(task_dir), file=sample, fields={})
    wide = build_model("mlp", arguments={"in_features": 64, "num_classes": 10})
    path = tmp_path / "mlp.pt"
    torch.save(wide.state_dict(), path)
    with pytest.raises(SubmissionError, match="do not fit architecture 'digits-cnn'"):
        kind.validate(_spec(), paths=TaskPaths(task_dir), file=path, fields=FIELDS)


def test_the_spec_names_bad_attack_options() -> None:
    attacks = [
        {"name": "lira", "options": {"reference": None}},
        {"name": "rmia", "options": {"temperature": 2.0}},
        {"name": "rmia"},
    ]
    with pytest.raises(ConfigurationError) as info:
        _spec(attacks=attacks)
    message = str(info.value)
    assert MSG_ATTACK_RESERVED.format(index=0, key="reference") in message
    accepted = "gamma, a, online, batch_size"
    assert (
        MSG_ATTACK_OPTION.format(index=1, name="rmia", key="temperature", accepted=accepted)
        in message
    )
    assert MSG_DUPLICATE_ATTACK.format(name="rmia") in message
    assert get_kind("membership-defence").check_spec(_spec()) == []


def test_a_data_set_too_small_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="population samples"):
        build_task(_spec(n_train=900, n_test=800), tasks_dir=tmp_path)
    assert not any((tmp_path / "defence-small").glob("*"))


def test_the_demo_spec_is_valid() -> None:
    from importlib import resources

    from trustlab.cli.arena import demo_specs
    from trustlab.tasks import load_spec

    path = Path(str(resources.files("trustlab.tasks") / "specs" / "membership-defence-digits.yaml"))
    assert path in [Path(str(p)) for p in demo_specs()]
    spec = load_spec(path)
    assert get_kind(spec.kind).check_spec(spec) == []


def test_scoring_queries_the_models_on_the_scoring_device(
    task_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustlab.tasks.membership_defence import kind as module
    from trustlab.tasks.spec import DEVICE_ENV

    devices: list[str] = []
    evaluate = module._evaluate

    def spy(*args: Any, **kwargs: Any) -> Any:
        devices.append(kwargs["device"])
        evaluation = evaluate(*args, **kwargs)
        assert all(p.device.type == "cpu" for p in args[1].parameters())
        return evaluation

    monkeypatch.setattr(module, "_evaluate", spy)
    # A GPU worker scores a task pinned to the CPU on the CPU: the spec's device comes first.
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    spec = parse_spec({**copy.deepcopy(SPEC), "device": "cpu"})
    sample = task_dir / "public" / "sample_submission.safetensors"
    kind = get_kind("membership-defence")
    kind.score(spec, paths=TaskPaths(task_dir), file=sample, fields=FIELDS)
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    kind.score(_spec(), paths=TaskPaths(task_dir), file=sample, fields=FIELDS)
    assert devices == ["cpu", "cpu"]
