"""Subgroup discovery (find_slices) and individual fairness (consistency_score)."""

from __future__ import annotations

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.fairness import consistency_score, find_slices


def _planted(n: int = 3000) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    features = {
        "sex": rng.choice(["F", "M"], n),
        "age": rng.choice(["young", "mid", "old"], n),
        "edu": rng.choice(["low", "high"], n),
    }
    y = rng.integers(0, 2, n)
    slice_ = (features["sex"] == "F") & (features["age"] == "young")
    wrong = np.where(slice_, rng.random(n) < 0.4, rng.random(n) < 0.05)
    return y, np.where(wrong, 1 - y, y), features


def test_the_planted_intersection_comes_first_with_its_size_and_interval() -> None:
    y, y_pred, features = _planted()
    found = find_slices(y_true=y, y_pred=y_pred, features=features, max_order=2, top_k=5)
    top = found[0]
    assert top.conditions == {"sex": "F", "age": "young"}
    members = (features["sex"] == "F") & (features["age"] == "young")
    assert top.size == members.sum()
    assert top.rate == pytest.approx(np.mean(y_pred[members] != y[members]))
    assert top.interval[0] < top.rate < top.interval[1]
    assert top.interval[0] > 0.3 and top.interval[1] < 0.5
    assert top.p_value < 1e-6 and top.difference > 0.3
    assert top.name == "sex=F, age=young"
    effects = [s.effect_size for s in found]
    assert effects == sorted(effects, reverse=True)


def test_order_min_size_and_direction_limit_the_search() -> None:
    y, y_pred, features = _planted()
    single = find_slices(y_true=y, y_pred=y_pred, features=features, max_order=1)
    assert all(len(s.conditions) == 1 for s in single)
    big = find_slices(y_true=y, y_pred=y_pred, features=features, min_size=1000, top_k=50)
    assert all(s.size >= 1000 for s in big)
    lower = find_slices(y_true=y, y_pred=y_pred, features=features, direction="lower")
    assert all(s.difference < 0 for s in lower)


def test_outcomes_count_on_their_own_rows() -> None:
    y, y_pred, features = _planted()
    found = find_slices(
        y_true=y, y_pred=y_pred, features=features, outcome="false_negative", top_k=50
    )
    for s in found:
        rows = np.all([features[k] == v for k, v in s.conditions.items()], axis=0) & (y == 1)
        assert s.size == rows.sum()
        assert s.rate == pytest.approx(np.mean(y_pred[rows] == 0))


def test_find_slices_refuses_bad_inputs() -> None:
    y, y_pred, features = _planted(100)
    with pytest.raises(DataError, match="features"):
        find_slices(y_true=y, y_pred=y_pred, features={})
    with pytest.raises(DataError, match="sex"):
        find_slices(y_true=y, y_pred=y_pred, features={"sex": features["sex"][:5]})
    with pytest.raises(ConfigurationError, match="outcome"):
        find_slices(y_true=y, y_pred=y_pred, features=features, outcome="loss")


def test_consistency_is_one_for_smooth_and_lower_for_noisy_predictions() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    smooth = (x[:, 0] > 0).astype(int)
    noisy = rng.integers(0, 2, 400)
    assert consistency_score(x=x, y_pred=smooth) > 0.9
    assert consistency_score(x=x, y_pred=noisy) < 0.7
    assert consistency_score(x=x, y_pred=np.ones(400)) == 1.0


def test_consistency_refuses_mismatched_lengths() -> None:
    with pytest.raises(DataError, match="one prediction per row"):
        consistency_score(x=np.zeros((10, 2)), y_pred=np.zeros(9))
    with pytest.raises(DataError, match="more rows"):
        consistency_score(x=np.zeros((3, 2)), y_pred=np.zeros(3), n_neighbors=5)
