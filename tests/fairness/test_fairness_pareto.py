"""The Pareto sweep and its plot."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM
from trustlab.fairness import (
    GroupThresholds,
    ParetoFront,
    ParetoPoint,
    pareto_sweep,
    plot_pareto,
)
from trustlab.fairness.pareto import MSG_NO_MATPLOTLIB


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    group = rng.integers(0, 2, 3000)
    y = (rng.random(3000) < 0.2 + 0.3 * group).astype(int)
    scores = y + 0.5 * group + rng.normal(size=3000)
    return scores, y, group


def _sweep(bounds: list[float]) -> ParetoFront:
    scores, y, group = _data()
    return pareto_sweep(
        bounds=bounds,
        fit=lambda bound: GroupThresholds(tolerance=bound).fit(
            scores=scores, y=y, sensitive_features=group
        ),
        evaluate=lambda m: m.evaluate(scores=scores, y=y, sensitive_features=group),
    )


def test_sweep_trades_accuracy_for_gap() -> None:
    sweep = _sweep([0.0, 0.05, 0.1, 0.2, 1.0])
    assert [point.bound for point in sweep.points] == [0.0, 0.05, 0.1, 0.2, 1.0]
    for point in sweep.points:
        # Randomised predictions land close to the fitted tolerance.
        assert point.gap <= point.bound + 0.05
        assert point.criterion == "demographic_parity"
    # A looser bound never costs accuracy on the fitting data.
    expected = [point.mitigation.accuracy_ for point in sweep.points]
    assert expected == sorted(expected)
    gaps = [point.gap for point in sweep.front]
    accuracies = [point.accuracy for point in sweep.front]
    assert gaps == sorted(gaps)
    assert accuracies == sorted(accuracies)
    assert all(point in sweep.points for point in sweep.front)
    best = sweep.best_within(0.06)
    assert best is not None and best.gap <= 0.06
    assert sweep.best_within(-1.0) is None
    assert len(sweep.to_dict()) == 5


def test_front_keeps_only_undominated_points() -> None:
    def point(gap: float, accuracy: float) -> ParetoPoint:
        return ParetoPoint(
            bound=gap,
            accuracy=accuracy,
            gap=gap,
            criterion="demographic_parity",
            mitigation=GroupThresholds(),
        )

    from trustlab.fairness.pareto import _front

    points = [point(0.1, 0.8), point(0.05, 0.82), point(0.2, 0.81), point(0.3, 0.85)]
    assert [(p.gap, p.accuracy) for p in _front(points)] == [(0.05, 0.82), (0.3, 0.85)]


@pytest.mark.parametrize("bounds", [[], [0.1, -0.2], "0.1", [float("inf")], [True]])
def test_sweep_checks_its_bounds(bounds: object) -> None:
    message = MSG_PARAM.format(
        name="bounds",
        owner="pareto_sweep",
        rule="a non-empty sequence of finite floats >= 0",
        value=bounds,
    )
    with pytest.raises(ConfigurationError) as info:
        _sweep(bounds)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_sweep_checks_what_fit_and_evaluate_return() -> None:
    with pytest.raises(ConfigurationError, match="must return a fitted FairnessMitigation"):
        pareto_sweep(bounds=[0.1], fit=lambda b: None, evaluate=lambda m: None)  # type: ignore
    with pytest.raises(ConfigurationError, match="must return a MitigationReport"):
        pareto_sweep(bounds=[0.1], fit=lambda b: GroupThresholds(), evaluate=lambda m: 0.5)  # type: ignore


def test_plot_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    sweep = _sweep([0.0, 0.1, 0.3])
    path = tmp_path / "front.png"
    ax = plot_pareto(sweep, path=path, label="thresholds")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ax.get_ylabel() == "accuracy"
    assert ax.get_xlabel() == "demographic parity gap"


def test_plot_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    front = ParetoFront(points=(), front=())
    with pytest.raises(ConfigurationError) as info:
        plot_pareto(front, path="unused.png")
    assert str(info.value) == MSG_NO_MATPLOTLIB
    assert "pip install trustlab[plot]" in MSG_NO_MATPLOTLIB


@pytest.mark.slow
def test_the_package_imports_without_plot_or_benchmark_extras() -> None:
    import subprocess

    code = (
        "import sys, trustlab.fairness; "
        "print(sorted(m for m in ('matplotlib', 'fairlearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
