"""Tests of membership_report, membership_advantage and plot_roc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError
from trustlab.core.metrics import auc, tpr_at_fpr
from trustlab.privacy import membership_advantage, membership_report, plot_roc


def test_advantage_by_hand() -> None:
    # Operating points: (0,0) (0,.5) (.5,.5) (.5,1) (1,1): best TPR - FPR is 0.5.
    assert membership_advantage(y_true=[0, 0, 1, 1], scores=[0.1, 0.4, 0.35, 0.8]) == 0.5
    assert membership_advantage(y_true=[0, 1], scores=[0.0, 1.0]) == 1.0


def test_report_matches_the_core_metrics() -> None:
    rng = np.random.default_rng(0)
    member = np.repeat([0, 1], 1000)
    scores = rng.normal(size=2000) + member
    report = membership_report(y_true=member, scores=scores, fprs=[0.001, 0.01], n_resamples=100)
    assert report.auc.estimate == auc(y_true=member, scores=scores)
    for fpr in (0.001, 0.01):
        assert report.tpr[fpr].estimate == tpr_at_fpr(y_true=member, scores=scores, fpr=fpr)
        assert report.tpr[fpr].low <= report.tpr[fpr].estimate <= report.tpr[fpr].high
    assert report.advantage is not None
    assert report.advantage.low <= report.advantage.estimate <= report.advantage.high
    assert (report.n_members, report.n_non_members) == (1000, 1000)
    again = membership_report(y_true=member, scores=scores, fprs=[0.001, 0.01], n_resamples=100)
    assert again == report


def test_report_refuses_a_bad_fpr() -> None:
    with pytest.raises(ConfigurationError, match="'fprs' parameter of membership_report"):
        membership_report(y_true=[0, 1], scores=[0.0, 1.0], fprs=[1.5])


def test_plot_roc_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    member = np.repeat([0, 1], 200)
    path = plot_roc(
        y_true=member,
        scores={"weak": rng.normal(size=400), "strong": rng.normal(size=400) + 2 * member},
        path=tmp_path / "roc.png",
        title="test",
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
