"""Traffic lights: thresholds in both directions, overrides, and their errors."""

from __future__ import annotations

import math

import pytest

from trustlab.audit.thresholds import (
    DEFAULT_THRESHOLDS,
    MSG_THRESHOLD_ORDER,
    MSG_UNKNOWN_THRESHOLD,
    parse_threshold,
    resolve_thresholds,
)
from trustlab.core.errors import ConfigurationError


def test_higher_is_better_lights() -> None:
    rule = DEFAULT_THRESHOLDS["performance.accuracy"]
    assert [rule.light(v) for v in (0.95, 0.9, 0.8, 0.5)] == ["green", "green", "amber", "red"]
    assert rule.light(math.nan) == "grey"
    assert rule.rule() == "green >= 0.9, amber >= 0.7, else red"


def test_lower_is_better_lights() -> None:
    rule = DEFAULT_THRESHOLDS["fairness.max_gap"]
    assert [rule.light(v) for v in (0.0, 0.05, 0.08, 0.2)] == ["green", "green", "amber", "red"]
    assert rule.rule().startswith("green <= 0.05")


def test_overrides_replace_the_cut_offs_and_keep_the_others() -> None:
    resolved = resolve_thresholds({"performance.accuracy": (0.99, 0.95)})
    assert resolved["performance.accuracy"].light(0.97) == "amber"
    assert resolved["fairness.max_gap"] == DEFAULT_THRESHOLDS["fairness.max_gap"]


def test_unknown_threshold_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_thresholds({"accuracy": (0.9, 0.7)})
    assert str(info.value).startswith(MSG_UNKNOWN_THRESHOLD.split("{")[0] + "'accuracy'")
    assert "performance.accuracy" in str(info.value)


def test_cut_offs_in_the_wrong_order_are_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_thresholds({"fairness.max_gap": (0.2, 0.1)})
    assert "must be <= amber" in str(info.value)
    assert MSG_THRESHOLD_ORDER.split("{")[0] in str(info.value)


@pytest.mark.parametrize("value", [(0.9,), "0.9,0.7", (0.9, math.inf), ("a", 0.7)])
def test_cut_offs_must_be_two_finite_numbers(value: object) -> None:
    with pytest.raises(ConfigurationError, match="two finite numbers"):
        resolve_thresholds({"performance.accuracy": value})  # type: ignore[dict-item]


def test_parse_threshold() -> None:
    assert parse_threshold("privacy.tpr_at_1pct_fpr=0.01,0.03") == (
        "privacy.tpr_at_1pct_fpr",
        (0.01, 0.03),
    )
    for bad in ("performance.accuracy", "performance.accuracy=0.9", "x=a,b"):
        with pytest.raises(ConfigurationError, match="NAME=GREEN,AMBER"):
            parse_threshold(bad)
