"""Figures are drawn outside pyplot and name the extra when matplotlib is missing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from trustlab.core.errors import ConfigurationError
from trustlab.core.plotting import MissingPlotExtra, new_figure, save_figure


def test_without_matplotlib_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(MissingPlotExtra) as info:
        new_figure(what="plot_roc")
    assert str(info.value) == "plot_roc needs matplotlib: pip install 'trustlab[plot]'."
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, ConfigurationError)


def test_a_plot_leaves_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    from trustlab.privacy import plot_roc

    backend = matplotlib.get_backend()
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(50), np.zeros(50)].astype(int)
    path = plot_roc(y_true=y, scores={"random": rng.random(100)}, path=tmp_path / "roc.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


def test_save_figure_creates_the_folder(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    figure = new_figure(what="test", figsize=(2, 2))
    figure.subplots().plot([0, 1], [0, 1])
    path = save_figure(figure, tmp_path / "a" / "b.png")
    assert path.is_file() and path.stat().st_size > 0
