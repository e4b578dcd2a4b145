"""Course rules without a server: phases in the task spec, the Ladder, Kaggle's final choice."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from specs import SMALL_SPEC

from trustlab.core.errors import ConfigurationError
from trustlab.server.services.leaderboard import final_choice
from trustlab.server.services.scores import interval, ladder_release
from trustlab.tasks import parse_spec


def _spec(**fields: Any) -> Any:
    data = copy.deepcopy(SMALL_SPEC)
    data.update(fields)
    return parse_spec(data)


DEV = {"name": "development", "start": "2027-01-01T00:00Z", "end": "2027-01-20T00:00Z"}
FINAL = {"name": "final", "start": "2027-01-20T00:00Z", "end": "2027-01-22T00:00Z"}


def test_phases_default_the_deadline_and_round_trip() -> None:
    spec = _spec(phases=[DEV, dict(FINAL, split="private", limits={"daily": 1})])
    assert spec.deadline == spec.phases[-1].end
    assert spec.phases[1].limits is not None and spec.phases[1].limits.daily == 1
    assert parse_spec(yaml.safe_load(spec.to_yaml())) == spec
    plain = _spec().to_yaml()
    for name in ("phases", "ladder", "final_selections", "device"):
        assert name not in plain


@pytest.mark.parametrize(
    ("phases", "extra", "needle"),
    [
        ([DEV, dict(FINAL, start="2027-01-10T00:00Z")], {}, "without overlap"),
        ([DEV, dict(FINAL, name="development")], {}, "unique"),
        ([dict(DEV, end="2026-12-01T00:00Z")], {}, "must end after it starts"),
        ([DEV, FINAL], {"deadline": "2027-01-21T00:00Z"}, "before the last phase's end"),
        ([dict(DEV, split="secret")], {}, "split"),
        ([dict(DEV, name="Dev Phase")], {}, "phases.0.name"),
    ],
)
def test_bad_phases_are_refused_naming_the_problem(
    phases: list[dict[str, Any]], extra: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigurationError, match="is invalid") as caught:
        _spec(phases=phases, **extra)
    assert needle in str(caught.value)


@pytest.mark.parametrize(
    "fields", [{"ladder": {"step": 0}}, {"final_selections": 0}, {"device": "tpu"}]
)
def test_course_fields_are_checked(fields: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="is invalid"):
        _spec(**fields)


def test_the_ladder_follows_blum_and_hardt() -> None:
    assert ladder_release([0.5, 0.505, 0.53, 0.52], step=0.01, higher_is_better=True) == [
        0.5,
        0.5,
        0.53,
        0.53,
    ]
    # Lower is better: a loss must drop by more than the step.
    assert ladder_release([0.3, 0.295, 0.2], step=0.01, higher_is_better=False) == [
        0.3,
        0.3,
        0.2,
    ]
    # Probing with tiny improvements never moves the released score.
    probes = [0.5 + 0.009 * i / 10 for i in range(10)]
    assert set(ladder_release(probes, step=0.01, higher_is_better=True)) == {0.5}


def _sub(sid: str, public: float, private: float, selected: bool = False) -> Any:
    return SimpleNamespace(id=sid, public_score=public, private_score=private, selected=selected)


def test_kaggle_rule_best_selected_else_best_public() -> None:
    subs = [_sub("a", 0.9, 0.1), _sub("b", 0.5, 0.6, True), _sub("c", 0.4, 0.7, True)]
    assert final_choice(subs, higher=True) == (subs[2], True)
    none_selected = [_sub("a", 0.9, 0.1), _sub("b", 0.5, 0.99)]
    assert final_choice(none_selected, higher=True) == (none_selected[0], False)
    assert final_choice(none_selected, higher=False) == (none_selected[1], False)


def test_intervals_are_read_only_when_well_formed() -> None:
    assert interval({"auc_ci95": [0.1, 0.2]}, "auc") == [0.1, 0.2]
    assert interval({"auc_ci95": [0.1]}, "auc") is None
    assert interval({"auc_ci95": [0.1, float("nan")]}, "auc") is None
    assert interval(None, "auc") is None
