"""Tests of trustlab.core.metrics.bootstrap: coverage, determinism, pairing, strata, errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.metrics import ConfidenceInterval, auc, bootstrap_ci, tpr_at_fpr
from trustlab.core.metrics.bootstrap import (
    MSG_CONFIDENCE,
    MSG_LENGTHS,
    MSG_METRIC_NON_FINITE,
    MSG_N_RESAMPLES,
    MSG_NO_ARRAYS,
    MSG_STRATIFY_KEY,
)


def _mean(*, x: np.ndarray) -> float:
    return float(x.mean())


def _scored_data(n: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    return {"y_true": y, "scores": rng.normal(size=n) + y}


def test_bernoulli_mean_coverage_is_close_to_nominal() -> None:
    truth, n, repetitions = 0.3, 200, 200
    rng = np.random.default_rng(123)
    covered = 0
    for repetition in range(repetitions):
        sample = (rng.random(n) < truth).astype(np.float64)
        ci = bootstrap_ci(_mean, arrays={"x": sample}, n_resamples=400, seed=repetition)
        covered += ci.low <= truth <= ci.high
    # 95% nominal; the percentile interval runs slightly short at n=200. Binomial sd ~1.5%.
    assert 0.90 <= covered / repetitions <= 0.99


def test_result_fields() -> None:
    sample = np.arange(10, dtype=np.float64)
    ci = bootstrap_ci(_mean, arrays={"x": sample}, n_resamples=50, confidence=0.9)
    assert isinstance(ci, ConfidenceInterval)
    assert ci.estimate == 4.5
    assert ci.low <= ci.estimate <= ci.high
    assert (ci.confidence, ci.n_resamples, ci.method) == (0.9, 50, "percentile")
    assert all(isinstance(v, float) for v in (ci.estimate, ci.low, ci.high, ci.confidence))


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    data = _scored_data()
    first = bootstrap_ci(auc, arrays=data, n_resamples=200, seed=7, stratify="y_true")
    again = bootstrap_ci(auc, arrays=data, n_resamples=200, seed=7, stratify="y_true")
    other = bootstrap_ci(auc, arrays=data, n_resamples=200, seed=8, stratify="y_true")
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_auc_interval_contains_the_estimate() -> None:
    data = _scored_data()
    ci = bootstrap_ci(auc, arrays=data, n_resamples=500, stratify="y_true")
    assert ci.estimate == auc(**data)
    assert ci.low < ci.estimate < ci.high
    assert ci.low > 0.5
    assert ci.high < 1.0


def test_tpr_at_fpr_through_a_lambda() -> None:
    data = _scored_data()
    ci = bootstrap_ci(
        lambda *, y_true, scores: tpr_at_fpr(y_true=y_true, scores=scores, fpr=0.05),
        arrays=data,
        n_resamples=100,
        stratify="y_true",
    )
    assert 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0


def test_stratified_resamples_keep_class_counts() -> None:
    y = np.array([0] * 7 + [1] * 3)
    seen: list[tuple[int, int]] = []

    def counts(*, y_true: np.ndarray) -> float:
        seen.append((int((y_true == 0).sum()), int((y_true == 1).sum())))
        return 0.0

    bootstrap_ci(counts, arrays={"y_true": y}, n_resamples=100, stratify="y_true")
    assert set(seen) == {(7, 3)}


def test_rows_are_resampled_jointly() -> None:
    values = np.random.default_rng(0).normal(size=50)

    def paired(*, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        assert np.array_equal(a, b)
        assert np.array_equal(c[:, 0], a)  # 2-D arrays are resampled by row
        return float(a.mean())

    bootstrap_ci(
        paired,
        arrays={"a": values, "b": values.copy(), "c": np.stack([values, -values], axis=1)},
        n_resamples=50,
    )


def test_accepts_tensors_and_lists() -> None:
    from_numpy = bootstrap_ci(_mean, arrays={"x": np.arange(20.0)}, n_resamples=30)
    from_tensor = bootstrap_ci(
        _mean, arrays={"x": torch.arange(20, dtype=torch.float64)}, n_resamples=30
    )
    from_list = bootstrap_ci(_mean, arrays={"x": list(range(20))}, n_resamples=30)
    assert from_numpy == from_tensor == from_list


def test_metric_failure_without_stratify_raises_not_drops() -> None:
    # One positive in ten: a resample without it happens with probability 0.9**10 ~ 35%.
    y = np.array([0] * 9 + [1])
    scores = np.linspace(0, 1, 10)
    with pytest.raises(DataError, match=r"stratify='y_true'") as info:
        bootstrap_ci(auc, arrays={"y_true": y, "scores": scores}, n_resamples=100)
    assert "The metric raised DataError on bootstrap resample" in str(info.value)
    assert isinstance(info.value.__cause__, DataError)
    ci = bootstrap_ci(auc, arrays={"y_true": y, "scores": scores}, stratify="y_true")
    assert ci.estimate == 1.0


def test_non_finite_metric_value_raises() -> None:
    message = MSG_METRIC_NON_FINITE.format(value=float("nan"), index=0, total=5)
    with pytest.raises(DataError, match=re.escape(message)):
        bootstrap_ci(
            lambda *, x: 0.0 if len(x) > 3 else float("nan"),  # full data ok, then NaN
            arrays={"x": np.arange(3)},
            n_resamples=5,
        )


@pytest.mark.parametrize("n_resamples", [0, -1, 2.5, True])
def test_bad_n_resamples(n_resamples: object) -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape(MSG_N_RESAMPLES.format(value=n_resamples))
    ):
        bootstrap_ci(_mean, arrays={"x": [1.0]}, n_resamples=n_resamples)  # type: ignore[arg-type]


@pytest.mark.parametrize("confidence", [0, 1, 95, -0.5, float("nan")])
def test_bad_confidence(confidence: float) -> None:
    with pytest.raises(
        ConfigurationError, match=re.escape(MSG_CONFIDENCE.format(value=confidence))
    ):
        bootstrap_ci(_mean, arrays={"x": [1.0]}, confidence=confidence)


def test_bad_arrays() -> None:
    with pytest.raises(ConfigurationError, match=re.escape(MSG_NO_ARRAYS)):
        bootstrap_ci(_mean, arrays={})
    lengths = {"a": 3, "b": 2}
    with pytest.raises(DataError, match=re.escape(MSG_LENGTHS.format(lengths=lengths))):
        bootstrap_ci(_mean, arrays={"a": [1, 2, 3], "b": [1, 2]})
    with pytest.raises(DataError, match="is empty"):
        bootstrap_ci(_mean, arrays={"x": []})
    message = MSG_STRATIFY_KEY.format(known="'x'", value="y_true")
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        bootstrap_ci(_mean, arrays={"x": [1.0, 2.0]}, stratify="y_true")
