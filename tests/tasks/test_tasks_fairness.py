"""The fairness kind: spec checks, artefacts, intake of weights, and the penalised score."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from digests import tree_digest
from hostile import write_hostile_state_dict

from trustlab.core.data import load_adult
from trustlab.core.errors import ConfigurationError, SubmissionError
from trustlab.core.models import build_model
from trustlab.core.weights import save_model
from trustlab.tasks import build_task, open_task, parse_spec
from trustlab.tasks.fairness import (
    MSG_FEW_GROUPS,
    MSG_TOO_MANY_ROWS,
    PenaltyRule,
    adult_feature_count,
    equalized_odds_gap,
    group_codes,
    group_names,
    part_metrics,
)
from trustlab.tasks.registry import get_kind
from trustlab.tasks.spec import TaskSpec

FAIR_SPEC: dict[str, Any] = {
    "id": "fair-small",
    "kind": "fairness",
    "title": "Small fairness task",
    "public_fraction": 0.3,
    "dataset": "adult",
    "seed": 3,
    "params": {
        "sensitive": ["sex", "race"],
        "gap_bound": 0.05,
        "penalty": {"kind": "linear", "slope": 2.0},
        "n_train": 1500,
        "n_test": 3000,
        "min_group_size": 20,
        "baseline": {"epochs": 3},
        "bootstrap_resamples": 20,
    },
}
N_FEATURES = 89


def spec_with(**params: Any) -> TaskSpec:
    data = copy.deepcopy(FAIR_SPEC)
    data["params"].update(params)
    return parse_spec(data)


def invalid(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_spec(data)
    return str(info.value)


@pytest.fixture(scope="module")
def fair_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fair-tasks")
    return build_task(parse_spec(FAIR_SPEC), tasks_dir=root).paths.root


@pytest.fixture(scope="module")
def hidden(fair_dir: Path) -> dict[str, np.ndarray]:
    with np.load(fair_dir / "hidden" / "test.npz") as data:
        return {key: data[key] for key in data.files}


def logreg(weight: torch.Tensor | None = None, bias: tuple[float, float] = (0.0, 0.0)) -> Any:
    """The task's ``logreg`` architecture with the given head."""
    model = build_model("mlp", arguments={"in_features": N_FEATURES, "hidden": []})
    with torch.no_grad():
        model.head.weight.copy_(torch.zeros(2, N_FEATURES) if weight is None else weight)
        model.head.bias.copy_(torch.tensor(bias))
    return model


def score_model(fair_dir: Path, model: Any, tmp_path: Path, *, spec: TaskSpec | None = None) -> Any:
    task = open_task(fair_dir)
    path = tmp_path / "model.safetensors"
    save_model(model, path)
    fields = {"model_name": "logreg"}
    task.kind.validate(task.spec, paths=task.paths, file=path, fields=fields)
    return task.kind.score(spec or task.spec, paths=task.paths, file=path, fields=fields)


# -- pure helpers ---------------------------------------------------------------------------


def test_penalty_rules_by_hand() -> None:
    linear = PenaltyRule(kind="linear", slope=2.0)
    assert linear.apply(accuracy=0.8, gap=0.03, bound=0.05) == 0.8
    assert linear.apply(accuracy=0.8, gap=0.05, bound=0.05) == 0.8
    assert linear.apply(accuracy=0.8, gap=0.20, bound=0.05) == pytest.approx(0.8 - 2 * 0.15)
    assert linear.apply(accuracy=0.7, gap=0.9, bound=0.0) == pytest.approx(0.7 - 1.8)
    zero = PenaltyRule(kind="zero", slope=5.0)
    assert zero.apply(accuracy=0.8, gap=0.05, bound=0.05) == 0.8
    assert zero.apply(accuracy=0.8, gap=0.0500001, bound=0.05) == 0.0
    assert "2 x max(0" in linear.describe(bound=0.05)
    assert "0 otherwise" in zero.describe(bound=0.05)


def test_group_codes_are_mixed_radix_with_matching_names() -> None:
    labels = {"sex": ["Female", "Male"], "race": ["White", "Asian", "Black"]}
    codes = group_codes({"sex": np.array([0, 1, 1, 0]), "race": np.array([2, 0, 1, 0])}, labels)
    assert codes.tolist() == [2, 3, 4, 0]
    names = group_names(labels)
    assert [names[c] for c in codes] == [
        "sex=Female, race=Black",
        "sex=Male, race=White",
        "sex=Male, race=Asian",
        "sex=Female, race=White",
    ]
    assert group_names({"sex": ["Female", "Male"]}) == ["Female", "Male"]


def test_group_names_are_the_fairness_pillars() -> None:
    """The task names intersectional groups exactly as trustlab.fairness does."""
    from trustlab.fairness import GroupMetrics

    labels = {"sex": ["Female", "Male"], "race": ["White", "Black"]}
    frame = GroupMetrics(
        metrics=["selection_rate"],
        y_true=[0, 1, 0, 1],
        y_pred=[0, 1, 1, 1],
        sensitive_features={
            "sex": ["Female", "Female", "Male", "Male"],
            "race": ["White", "Black", "White", "Black"],
        },
    )
    assert sorted(frame.by_group["selection_rate"]) == sorted(group_names(labels))


def test_equalized_odds_gap_by_hand() -> None:
    y_true = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
    y_pred = np.array([1, 0, 1, 0, 1, 1, 0, 0, 0, 0])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    # group 2 has no negatives: left out. TPR 0.5 vs 1.0, FPR 0.5 vs 0.0 -> 0.5.
    assert equalized_odds_gap(y_true=y_true, y_pred=y_pred, group=group) == pytest.approx(0.5)
    assert equalized_odds_gap(y_true=y_true[:4], y_pred=y_pred[:4], group=group[:4]) == 0.0


@pytest.mark.parametrize(
    ("sensitive", "include"), [(["sex"], True), (["sex"], False), (["sex", "race"], False)]
)
def test_feature_count_matches_the_loader(sensitive: list[str], include: bool) -> None:
    data = load_adult(split="test", sensitive=sensitive, include_sensitive_in_features=include)
    count = adult_feature_count(sensitive=sensitive, include_sensitive_in_features=include)
    assert count == data.x.shape[1]
    spec = spec_with(sensitive=sensitive, include_sensitive_in_features=include)
    kind = get_kind("fairness")
    for choice in kind._params(spec).architectures:  # filled in from the data set
        assert choice.arguments["in_features"] == count


# -- spec errors ----------------------------------------------------------------------------


def _spec_data(**params: Any) -> dict[str, Any]:
    data = copy.deepcopy(FAIR_SPEC)
    data["params"].update(params)
    return data


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"sensitive": ["religion"]}, "field 'params.sensitive.0'"),
        ({"criterion": "calibration"}, "field 'params.criterion'"),
        ({"sensitive": []}, "field 'params.sensitive'"),
        ({"sensitive": ["sex", "sex"]}, "names 'sex' twice"),
        ({"gap_bound": 1.5}, "field 'params.gap_bound'"),
        ({"gap_bound": -0.01}, "field 'params.gap_bound'"),
        ({"penalty": {"kind": "quadratic"}}, "field 'params.penalty.kind'"),
        ({"penalty": {"slope": 0}}, "field 'params.penalty.slope'"),
        ({"n_train": 10}, "field 'params.n_train'"),
        ({"epochs": 3}, "field 'params.epochs': unknown field"),
        ({"architectures": []}, "field 'params.architectures'"),
        (
            {"architectures": [{"name": "cnn", "architecture": "digits-cnn"}]},
            "architecture 'cnn' must map adult rows of shape (n, 89)",
        ),
        (
            {
                "architectures": [
                    {"name": "m", "architecture": "mlp", "arguments": {"in_features": 5}}
                ]
            },
            "architecture 'm' must map adult rows",
        ),
        (
            {
                "architectures": [
                    {"name": "m", "architecture": "mlp", "arguments": {"num_classes": 3}}
                ]
            },
            "shape (2, 3)",
        ),
        ({"baseline": {"architecture": "resnet"}}, "'resnet' is not one of the task's"),
    ],
)
def test_bad_params_are_named(params: dict[str, Any], expected: str) -> None:
    assert expected in invalid(_spec_data(**params))


def test_dataset_and_metric_are_checked() -> None:
    assert "one of adult, compas, german" in invalid(dict(_spec_data(), dataset="digits"))
    # German Credit has no race attribute.
    assert "the german data have the sensitive attributes sex, age; got 'race'" in invalid(
        dict(_spec_data(), dataset="german")
    )
    assert "lower-is-better" in invalid(dict(_spec_data(), metric="dp_gap"))
    assert parse_spec(dict(_spec_data(), metric="accuracy")).metric == "accuracy"
    assert parse_spec(_spec_data()).metric == "score"


def test_build_refuses_impossible_sizes(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_task(spec_with(n_test=20_000), tasks_dir=tmp_path)
    assert str(info.value) == MSG_TOO_MANY_ROWS.format(
        field="n_test", got=20_000, split="test", available=15_060
    )
    with pytest.raises(ConfigurationError) as info:
        build_task(spec_with(n_test=200, min_group_size=100), tasks_dir=tmp_path)
    # 30% of 200 rows is 60, so no group of the public part can reach 100 rows.
    assert str(info.value) == MSG_FEW_GROUPS.format(part="public", count=0, min_size=100)
    assert list(tmp_path.iterdir()) == []  # nothing left behind


# -- artefacts ------------------------------------------------------------------------------


def test_artefacts_and_encoding(fair_dir: Path, hidden: dict[str, np.ndarray]) -> None:
    public = sorted(p.name for p in (fair_dir / "public").iterdir())
    assert public == ["README.md", "encoding.json", "sample_submission.safetensors", "train.npz"]
    with np.load(fair_dir / "public" / "train.npz") as train:
        assert sorted(train.files) == ["race", "sex", "x", "y"]
        assert train["x"].shape == (1500, N_FEATURES) and train["x"].dtype == np.float32
        assert set(train["y"].tolist()) == {0, 1}
        assert train["race"].max() <= 4 and train["sex"].max() <= 1
    encoding = json.loads((fair_dir / "public" / "encoding.json").read_text())
    reference = load_adult(split="test", sensitive=("sex", "race"))
    assert encoding["feature_names"] == reference.feature_names
    assert encoding["label_names"] == ["<=50K", ">50K"]
    assert encoding["sensitive"] == reference.sensitive_labels
    assert encoding["groups"][0] == "sex=Female, race=White" and len(encoding["groups"]) == 10
    # The hidden rows are rows of the official test split, with their own codes.
    assert hidden["x"].shape == (3000, N_FEATURES)
    rows = {r.tobytes() for r in reference.x}
    assert all(r.tobytes() in rows for r in hidden["x"][:50])


def test_public_part_keeps_every_group_and_label_share(hidden: dict[str, np.ndarray]) -> None:
    labels = {"sex": ["Female", "Male"], "race": ["a", "b", "c", "d", "e"]}
    group = group_codes({"sex": hidden["sex"], "race": hidden["race"]}, labels)
    public = hidden["public"]
    for stratum in np.unique(group * 2 + hidden["y"]):
        members = (group * 2 + hidden["y"]) == stratum
        assert int(public[members].sum()) == round(members.sum() * 0.3)


def test_readme_states_the_rule_and_the_encoding(fair_dir: Path) -> None:
    readme = (fair_dir / "public" / "README.md").read_text()
    task = open_task(fair_dir)
    rules = task.kind.rules_text(task.spec)
    assert rules in readme
    assert "accuracy - 2 x max(0, demographic-parity gap - 0.05)" in rules
    assert "fewer than 20 rows" in rules
    assert "0 Female, 1 Male" in readme and "4 Black" in readme
    assert "`education` is dropped" in readme


def test_the_same_spec_builds_identical_files(fair_dir: Path, tmp_path: Path) -> None:
    again = build_task(parse_spec(FAIR_SPEC), tasks_dir=tmp_path).paths.root
    assert tree_digest(again) == tree_digest(fair_dir)


# -- intake -----------------------------------------------------------------------------------


def _validate(fair_dir: Path, file: Path, fields: dict[str, str]) -> dict[str, Any]:
    task = open_task(fair_dir)
    return task.kind.validate(task.spec, paths=task.paths, file=file, fields=fields)


def _refused(fair_dir: Path, file: Path, fields: dict[str, str]) -> str:
    with pytest.raises(SubmissionError) as info:
        _validate(fair_dir, file, fields)
    return str(info.value)


def test_sample_submission_and_a_state_dict_are_accepted(fair_dir: Path, tmp_path: Path) -> None:
    sample = fair_dir / "public" / "sample_submission.safetensors"
    assert _validate(fair_dir, sample, {"model_name": "logreg"}) == {
        "model_name": "logreg",
        "parameters": 2 * N_FEATURES + 2,
    }
    model = build_model("mlp", arguments={"in_features": N_FEATURES, "hidden": [32]})
    torch.save(model.state_dict(), tmp_path / "w.pt")
    assert (
        _validate(fair_dir, tmp_path / "w.pt", {"model_name": "mlp-32"})["model_name"] == "mlp-32"
    )


def test_bad_submissions_are_refused_with_the_reason(fair_dir: Path, tmp_path: Path) -> None:
    sample = fair_dir / "public" / "sample_submission.safetensors"
    wrong = _refused(fair_dir, sample, {"model_name": "mlp-32"})
    assert "do not fit architecture 'mlp-32'" in wrong and "hidden.0.weight" in wrong
    assert "'model_name' is required" in _refused(fair_dir, sample, {})
    assert "not accepted by this task" in _refused(fair_dir, sample, {"model_name": "resnet18"})
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not weights at all")
    assert "cannot be used" in _refused(fair_dir, garbage, {"model_name": "logreg"})


def test_a_hostile_pickle_is_refused_without_running(fair_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_hostile_state_dict(tmp_path / "evil.pt", model=logreg(), marker=marker)
    message = _refused(fair_dir, path, {"model_name": "logreg"})
    assert "Refused to load" in message
    assert not marker.exists()


def test_non_finite_logits_are_refused(fair_dir: Path, tmp_path: Path) -> None:
    huge = torch.full((2, N_FEATURES), 3e38)
    path = tmp_path / "huge.safetensors"
    save_model(logreg(huge), path)
    message = _refused(fair_dir, path, {"model_name": "logreg"})
    assert "NaN or infinite logits" in message


# -- scoring ----------------------------------------------------------------------------------


def _by_hand(
    hidden: dict[str, np.ndarray], predicted: np.ndarray, mask: np.ndarray, min_size: int = 20
) -> tuple[float, float]:
    """Accuracy and the DP gap over groups of at least ``min_size`` rows, computed directly."""
    y = hidden["y"][mask]
    pred = predicted[mask]
    keys = list(zip(hidden["sex"][mask].tolist(), hidden["race"][mask].tolist(), strict=True))
    rates = []
    for key in set(keys):
        rows = np.array([k == key for k in keys])
        if rows.sum() >= min_size:
            rates.append(pred[rows].mean())
    return float((pred == y).mean()), float(max(rates) - min(rates))


def test_a_constant_predictor_has_no_gap(
    fair_dir: Path, hidden: dict[str, np.ndarray], tmp_path: Path
) -> None:
    for label, bias in ((0, (1.0, 0.0)), (1, (0.0, 1.0))):
        result = score_model(fair_dir, logreg(bias=bias), tmp_path)
        for part, mask in (("public", hidden["public"]), ("private", ~hidden["public"])):
            metrics = result.public_metrics if part == "public" else result.private_metrics
            share = float((hidden["y"][mask] == label).mean())
            assert metrics["dp_gap"] == 0.0 and metrics["eo_gap"] == 0.0
            assert metrics["accuracy"] == pytest.approx(share)
            assert metrics["score"] == pytest.approx(share)
        assert result.public_score == result.public_metrics["score"]
        assert result.private_score == result.private_metrics["score"]


def test_a_predictor_of_sex_gets_the_full_penalty(
    fair_dir: Path, hidden: dict[str, np.ndarray], tmp_path: Path
) -> None:
    names = json.loads((fair_dir / "public" / "encoding.json").read_text())["feature_names"]
    weight = torch.zeros(2, N_FEATURES)
    weight[1, names.index("sex=Male")] = 1.0
    result = score_model(fair_dir, logreg(weight, bias=(0.5, 0.0)), tmp_path)
    predicted = hidden["sex"]
    for metrics, mask in (
        (result.public_metrics, hidden["public"]),
        (result.private_metrics, ~hidden["public"]),
    ):
        accuracy, gap = _by_hand(hidden, predicted, mask)
        assert gap == 1.0
        assert metrics["accuracy"] == pytest.approx(accuracy)
        assert metrics["dp_gap"] == pytest.approx(1.0)
        assert metrics["score"] == pytest.approx(accuracy - 2.0 * (1.0 - 0.05))
        assert metrics["selection_rate[sex=Female, race=White]"] == 0.0
        assert metrics["selection_rate[sex=Male, race=White]"] == 1.0


def test_the_baseline_is_scored_by_the_rule(
    fair_dir: Path, hidden: dict[str, np.ndarray], tmp_path: Path
) -> None:
    from trustlab.core.weights import load_model

    model = load_model(fair_dir / "public" / "sample_submission.safetensors")
    with torch.no_grad():
        predicted = model(torch.from_numpy(hidden["x"])).argmax(dim=1).numpy()
    result = score_model(fair_dir, model, tmp_path)
    zero_spec = spec_with(penalty={"kind": "zero"})
    zero = score_model(fair_dir, model, tmp_path, spec=zero_spec)
    for part, mask in (("public", hidden["public"]), ("private", ~hidden["public"])):
        metrics = getattr(result, f"{part}_metrics")
        accuracy, gap = _by_hand(hidden, predicted, mask)
        assert metrics["accuracy"] == pytest.approx(accuracy)
        assert metrics["dp_gap"] == pytest.approx(gap)
        assert metrics["score"] == pytest.approx(accuracy - 2.0 * max(0.0, gap - 0.05))
        expected_zero = accuracy if gap <= 0.05 else 0.0
        assert getattr(zero, f"{part}_score") == pytest.approx(expected_zero)
        for name in ("score", "accuracy", "dp_gap"):
            low, high = metrics[f"{name}_ci95"]
            assert low <= high
        assert metrics["rows"] == int(mask.sum())
    assert result.public_metrics["accuracy_ci95"][0] <= result.public_metrics["accuracy"]
    # Scoring is deterministic.
    again = score_model(fair_dir, model, tmp_path)
    assert again.to_json() == result.to_json()


def test_small_groups_are_left_out_of_the_gap(
    fair_dir: Path, hidden: dict[str, np.ndarray], tmp_path: Path
) -> None:
    """A model unfair only to a group below min_group_size pays no penalty for it."""
    public = hidden["public"]
    labels = {"sex": ["F", "M"], "race": ["W", "A", "I", "O", "B"]}
    group = group_codes({"sex": hidden["sex"], "race": hidden["race"]}, labels)
    sizes = {g: int((group[public] == g).sum()) for g in np.unique(group)}
    small = [g for g, n in sizes.items() if 0 < n < 20 and g % 5 != 0]
    assert small, "the fixture should have a small group in the public part"
    names = json.loads((fair_dir / "public" / "encoding.json").read_text())["feature_names"]
    race_of = {1: "Asian-Pac-Islander", 2: "Amer-Indian-Eskimo", 3: "Other", 4: "Black"}
    target = small[0]
    sex_name = "Female" if target // 5 == 0 else "Male"
    weight = torch.zeros(2, N_FEATURES)
    # Predict '>50K' only when both columns of the small group are set.
    weight[1, names.index(f"sex={sex_name}")] = 1.0
    weight[1, names.index(f"race={race_of[target % 5]}")] = 1.0
    result = score_model(fair_dir, logreg(weight, bias=(1.5, 0.0)), tmp_path)
    metrics = result.public_metrics
    assert metrics["dp_gap"] == 0.0
    assert metrics["groups_scored"] == sum(n >= 20 for n in sizes.values())
    assert metrics["score"] == pytest.approx(metrics["accuracy"])


def test_form_fields_and_metrics(fair_dir: Path) -> None:
    task = open_task(fair_dir)
    fields = task.kind.form_fields_for(task.spec)
    assert [f.name for f in fields] == ["model_name"]
    assert fields[0].choices == ("logreg", "mlp-32", "mlp-64x2")
    assert task.kind.metric_names(task.spec) == ["score", "accuracy", "dp_gap", "eo_gap"]


def test_the_demo_task_is_packaged_and_valid() -> None:
    from importlib import resources

    from trustlab.cli.arena import demo_specs
    from trustlab.tasks import load_spec

    path = Path(str(resources.files("trustlab.tasks") / "specs" / "fairness-adult.yaml"))
    assert path in [Path(str(p)) for p in demo_specs()]
    spec = load_spec(path)
    assert spec.kind == "fairness" and spec.metric == "score"
    assert spec.params["sensitive"] == ["sex"] and spec.params["gap_bound"] == 0.05
    assert spec.params["n_train"] is None  # the whole training split


# -- equalized odds, COMPAS and German Credit ------------------------------------------------


def test_equalized_odds_scores_the_eo_gap() -> None:
    y_true = np.array([1, 1, 0, 0] * 10 + [1, 1, 0, 0] * 10)
    # Group 0 is predicted perfectly; group 1 gets every negative wrong: FPR 0 vs 1.
    y_pred = np.array([1, 1, 0, 0] * 10 + [1, 1, 1, 1] * 10)
    group = np.array([0] * 40 + [1] * 40)
    common = {
        "y_true": y_true,
        "y_pred": y_pred,
        "group": group,
        "names": ["a", "b"],
        "gap_bound": 0.05,
        "penalty": PenaltyRule(kind="linear", slope=1.0),
        "min_group_size": 1,
        "resamples": 10,
        "seed": 0,
    }
    dp = part_metrics(criterion="demographic_parity", **common)
    eo = part_metrics(criterion="equalized_odds", **common)
    assert dp["dp_gap"] == pytest.approx(0.5) and eo["eo_gap"] == pytest.approx(1.0)
    assert dp["score"] == pytest.approx(0.75 - (0.5 - 0.05))
    assert eo["score"] == pytest.approx(0.75 - (1.0 - 0.05))
    assert "eo_gap_ci95" in eo and "dp_gap_ci95" not in eo
    words = PenaltyRule(kind="zero").describe(bound=0.05, criterion="equalized_odds")
    assert "equalized-odds gap is at most 0.05" in words


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fairness-compas", "fairness-german"])
def test_the_compas_and_german_demo_tasks_build_and_score(name: str, tmp_path: Path) -> None:
    from importlib import resources

    from trustlab.cli.arena import demo_specs
    from trustlab.tasks import load_spec

    path = Path(str(resources.files("trustlab.tasks") / "specs" / f"{name}.yaml"))
    assert path in [Path(str(p)) for p in demo_specs()]
    spec = load_spec(path)
    task = build_task(spec, tasks_dir=tmp_path)
    encoding = json.loads((task.paths.public / "encoding.json").read_text())
    readme = (task.paths.public / "README.md").read_text()
    assert spec.dataset in ("compas", "german")
    assert f"Label 1 is `{encoding['label_names'][1]}`" in readme
    criterion = spec.params["criterion"]
    assert criterion.replace("_", "-").split("-")[0] in readme  # the scoring rule in words
    sample = task.paths.public / "sample_submission.safetensors"
    fields = {"model_name": "logreg"}
    task.kind.validate(task.spec, paths=task.paths, file=sample, fields=fields)
    result = task.kind.score(task.spec, paths=task.paths, file=sample, fields=fields)
    metrics = result.public_metrics
    assert 0.5 < metrics["accuracy"] <= 1.0
    gap = "eo_gap" if criterion == "equalized_odds" else "dp_gap"
    assert f"{gap}_ci95" in metrics


def test_compas_spec_fills_in_features_of_every_filled_architecture() -> None:
    from importlib import resources

    from trustlab.tasks import load_spec

    path = Path(str(resources.files("trustlab.tasks") / "specs" / "fairness-compas.yaml"))
    spec = load_spec(path)
    params = get_kind("fairness")._params(spec)
    assert [c.arguments["in_features"] for c in params.architectures] == [18, 18, 18]
    tabular = params.architectures[2].build()
    assert tabular(torch.zeros(3, 18)).shape == (3, 2)
