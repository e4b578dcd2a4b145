"""Task specs: valid YAML parses; every bad field gives a ConfigurationError naming it."""

from __future__ import annotations

import copy
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from specs import SMALL_SPEC

from trustlab.core.errors import ConfigurationError
from trustlab.tasks import list_kinds, load_spec, parse_spec
from trustlab.tasks.spec import parse_duration, parse_size

_DELETE = object()


def spec_data(**changes: Any) -> dict[str, Any]:
    """A deep copy of the small spec with top-level fields changed (``_DELETE`` drops one)."""
    data = copy.deepcopy(SMALL_SPEC)
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return data


def with_params(**changes: Any) -> dict[str, Any]:
    data = spec_data()
    data["params"].update(changes)
    return data


def invalid(data: Any, *, source: str = "<spec>") -> str:
    with pytest.raises(ConfigurationError) as info:
        parse_spec(data, source=source)
    return str(info.value)


# -- valid specs ----------------------------------------------------------------------------


def test_small_spec_parses_with_defaults_filled_in() -> None:
    spec = parse_spec(SMALL_SPEC)
    assert spec.id == "mia-small"
    assert spec.kind == "membership-inference"
    assert spec.max_file_size == 200_000
    assert spec.cooldown.accepted == 0.0
    assert spec.limits.daily is None
    # The kind's default metric is the TPR at the first FPR; its params get their defaults.
    assert spec.metric == "tpr@0.05"
    assert spec.params["member_fraction"] == 0.5
    assert spec.params["n_candidates"] == 200


def test_load_spec_reads_a_yaml_file(tmp_path: Path) -> None:
    text = """
id: mia-yaml
kind: membership-inference
title: From YAML
deadline: 2027-01-31T23:59:00Z
public_fraction: 0.25
metric: auc
cooldown: {accepted: 60s, failed: 10m}
limits: {daily: 20, total: 200}
max_file_size: 1MB
dataset: digits
seed: 3
params:
  n_candidates: 100
  n_calibration: 20
  fprs: [0.1, 0.01]
"""
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    spec = load_spec(path)
    assert spec.id == "mia-yaml"
    assert spec.deadline == datetime(2027, 1, 31, 23, 59, tzinfo=timezone.utc)
    assert spec.public_fraction == 0.25
    assert spec.metric == "auc"
    assert spec.cooldown.accepted == 60.0
    assert spec.cooldown.failed == 600.0
    assert spec.limits.daily == 20
    assert spec.limits.total == 200
    assert spec.max_file_size == 1_000_000
    assert spec.seed == 3
    assert spec.params["fprs"] == [0.1, 0.01]


def test_the_bundled_demo_spec_is_valid() -> None:
    from trustlab.cli.arena import demo_specs

    specs = demo_specs()
    assert specs
    for path in specs:
        assert load_spec(path).id


def test_naive_deadline_is_taken_as_utc() -> None:
    spec = parse_spec(spec_data(deadline="2027-03-01T12:00:00"))
    assert spec.deadline == datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert spec.deadline is not None and spec.deadline.utcoffset() is not None


def test_aware_deadline_is_converted_to_utc() -> None:
    spec = parse_spec(spec_data(deadline="2027-03-01T12:00:00+02:00"))
    assert spec.deadline == datetime(2027, 3, 1, 10, 0, tzinfo=timezone.utc)
    assert spec.deadline is not None and spec.deadline.tzinfo == timezone.utc


def test_to_yaml_is_stable_and_round_trips() -> None:
    first = parse_spec(SMALL_SPEC).to_yaml()
    assert parse_spec(copy.deepcopy(SMALL_SPEC)).to_yaml() == first
    # Key order in the input does not matter.
    reordered = dict(reversed(list(copy.deepcopy(SMALL_SPEC).items())))
    assert parse_spec(reordered).to_yaml() == first
    # The canonical YAML parses back to the same spec and the same text.
    again = parse_spec(yaml.safe_load(first))
    assert again == parse_spec(SMALL_SPEC)
    assert again.to_yaml() == first


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0.0), (30, 30.0), (1.5, 1.5), ("45", 45.0), ("30s", 30.0), ("10m", 600.0),
     ("2h", 7200.0), ("1d", 86400.0), (" 2H ", 7200.0)],
)  # fmt: skip
def test_durations(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "size"),
    [(1, 1), (1048576, 1048576), ("1MB", 1_000_000), ("500KB", 500_000), ("1GiB", 1024**3),
     ("2kib", 2048), ("1.5MB", 1_500_000), ("10", 10)],
)  # fmt: skip
def test_sizes(value: Any, size: int) -> None:
    assert parse_size(value) == size


# -- invalid specs --------------------------------------------------------------------------


def test_unknown_kind_lists_the_known_kinds() -> None:
    message = invalid(spec_data(kind="model-stealing"))
    assert "field 'kind'" in message
    assert "model-stealing" in message
    for known in list_kinds():
        assert known in message
    assert "membership-inference" in message


def test_unknown_top_level_field() -> None:
    message = invalid(spec_data(dedline="2027-01-01"))
    assert "field 'dedline'" in message
    assert "unknown field" in message


def test_unknown_params_field() -> None:
    message = invalid(with_params(epoch=3))
    assert "field 'params.epoch'" in message
    assert "unknown field" in message


@pytest.mark.parametrize("bad_id", ["Mia-Small", "m", "-mia", "mia-", "mia_small", "mia small"])
def test_bad_id_pattern(bad_id: str) -> None:
    message = invalid(spec_data(id=bad_id))
    assert "field 'id'" in message


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, -0.1, 1.5])
def test_public_fraction_outside_zero_one(fraction: float) -> None:
    assert "field 'public_fraction'" in invalid(spec_data(public_fraction=fraction))


@pytest.mark.parametrize("value", [-5, "-5s", "10 minutes", "soon", True, "1w", ""])
def test_bad_cooldown_duration(value: Any) -> None:
    message = invalid(spec_data(cooldown={"accepted": value, "failed": 0}))
    assert "field 'cooldown.accepted'" in message
    assert "duration" in message


def test_unknown_cooldown_field() -> None:
    message = invalid(spec_data(cooldown={"accepted": 0, "rejected": 0}))
    assert "field 'cooldown.rejected'" in message


@pytest.mark.parametrize("value", ["ten", "1 TB", "0", 0, -3, "-1MB", True, "MB"])
def test_bad_max_file_size(value: Any) -> None:
    message = invalid(spec_data(max_file_size=value))
    assert "field 'max_file_size'" in message
    assert "size" in message


@pytest.mark.parametrize(("field", "value"), [("daily", 0), ("total", -1)])
def test_bad_limits(field: str, value: int) -> None:
    limits = {"daily": None, "total": None, field: value}
    assert f"field 'limits.{field}'" in invalid(spec_data(limits=limits))


def test_negative_seed() -> None:
    assert "field 'seed'" in invalid(spec_data(seed=-1))


def test_metric_not_among_the_kinds_metrics() -> None:
    message = invalid(spec_data(metric="tpr@0.1"))
    assert "field 'metric'" in message
    # The message lists the metrics this spec does have.
    for name in ("tpr@0.05", "tpr@0.01", "auc"):
        assert name in message


def test_metric_of_any_configured_fpr_is_accepted() -> None:
    assert parse_spec(spec_data(metric="tpr@0.01")).metric == "tpr@0.01"
    assert parse_spec(spec_data(metric="auc")).metric == "auc"


def test_unknown_architecture() -> None:
    message = invalid(with_params(architecture="gpt-17"))
    assert "field 'params.architecture'" in message
    assert "gpt-17" in message
    assert "digits-cnn" in message


def test_odd_n_calibration() -> None:
    message = invalid(with_params(n_calibration=41))
    assert "field 'params.n_calibration'" in message
    assert "even" in message


@pytest.mark.parametrize("fpr", [0.0, 1.0, -0.05, 1.5])
def test_fprs_outside_zero_one(fpr: float) -> None:
    message = invalid(with_params(fprs=[0.05, fpr]))
    assert "field 'params.fprs'" in message
    assert "between 0 and 1" in message


def test_empty_fprs() -> None:
    assert "field 'params.fprs'" in invalid(with_params(fprs=[]))


@pytest.mark.parametrize("field", ["kind", "title", "dataset", "id"])
def test_missing_required_field(field: str) -> None:
    message = invalid(spec_data(**{field: _DELETE}))
    assert f"field '{field}'" in message
    assert "required field is missing" in message


def test_several_problems_are_all_listed() -> None:
    message = invalid(spec_data(id="BAD", public_fraction=2.0, colour="red"))
    for field in ("id", "public_fraction", "colour"):
        assert f"field '{field}'" in message


@pytest.mark.parametrize("data", [None, [], ["id", "kind"], "mia-small", 3])
def test_spec_that_is_not_a_mapping(data: Any) -> None:
    message = invalid(data, source="spec.yaml")
    assert "spec.yaml" in message
    assert "mapping" in message


def test_yaml_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- id: mia-small\n- kind: membership-inference\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="mapping") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_empty_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="mapping"):
        load_spec(path)


def test_unreadable_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: mia-small\nkind: [membership-inference\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="cannot be read as YAML") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_yaml_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigurationError, match="cannot be read as YAML"):
        load_spec(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        load_spec(path)
    assert str(path) in str(info.value)


def test_errors_from_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_data(public_fraction=3)), encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_spec(path)
    assert str(path) in str(info.value)
    assert "field 'public_fraction'" in str(info.value)


def test_a_build_derives_the_scoring_limits_from_the_sample_submission(
    small_task_dir: Path,
) -> None:
    from trustlab.tasks.base import TaskPaths, read_manifest
    from trustlab.tasks.build import MIN_SCORING_CPU_SECONDS, SCORING_FACTOR

    limits = read_manifest(TaskPaths(small_task_dir))["scoring_limits"]
    assert limits["factor"] == SCORING_FACTOR
    assert limits["reference_cpu_seconds"] >= 0
    expected = max(
        MIN_SCORING_CPU_SECONDS, math.ceil(SCORING_FACTOR * limits["reference_cpu_seconds"])
    )
    assert abs(limits["cpu_seconds"] - expected) <= 1
