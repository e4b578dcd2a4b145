"""``trustlab audit`` as a user runs it: a report on success; on bad input one ``error:`` line on
stderr, exit code 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from trustlab.core.data import save_npz


@pytest.fixture
def trustlab(trustlab_main: Any) -> Any:
    """``trustlab ARGS...`` run in-process (the shared ``trustlab_main`` fixture)."""
    return trustlab_main


@pytest.mark.slow
def test_audit_writes_the_report_and_prints_its_path(trustlab, tabular, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    result = trustlab(
        "audit",
        tabular.model,
        "--data",
        tabular.data,
        "--out",
        out,
        "--only",
        "performance,fairness",
        "--sensitive",
        "groups",
        "--threshold",
        "performance.accuracy=0.99,0.98",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "report.html")
    data = json.loads((out / "report.json").read_text())
    assert data["thresholds"]["performance.accuracy"]["green"] == 0.99
    assert [s["name"] for s in data["sections"]] == ["performance", "fairness"]
    assert "Performance: accuracy" in result.stderr


def _bad_inputs(tabular: Any, folder: Path) -> dict[str, tuple[list[str], str]]:
    save_npz(folder / "no_y.npz", x=tabular.x)
    nan = tabular.x.copy()
    nan[3, 0] = np.nan
    save_npz(folder / "nan.npz", x=nan, y=tabular.y)
    save_npz(folder / "labels.npz", x=tabular.x, y=tabular.y * 3)
    save_npz(
        folder / "one_group.npz", x=tabular.x, y=tabular.y, groups=np.full(len(tabular.y), "g")
    )
    model = str(tabular.model)
    return {
        "npz without y": ([model, "--data", str(folder / "no_y.npz")], "has no array 'y'"),
        "NaN inputs": ([model, "--data", str(folder / "nan.npz")], "NaN or infinite"),
        "output vs labels": (
            [model, "--data", str(folder / "labels.npz")],
            "outputs 2 class scores but the labels",
        ),
        "unknown section": (
            [model, "--data", str(tabular.data), "--only", "robustness,magic"],
            "Unknown section 'magic'",
        ),
        "one group": (
            [model, "--data", str(folder / "one_group.npz"), "--sensitive", "groups"],
            "has a single group ('g')",
        ),
        "bad threshold": (
            [model, "--data", str(tabular.data), "--threshold", "performance.accuracy"],
            "NAME=GREEN,AMBER",
        ),
        "missing model": (
            [str(folder / "none.safetensors"), "--data", str(tabular.data)],
            "does not exist",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "npz without y",
        "NaN inputs",
        "output vs labels",
        "unknown section",
        "one group",
        "bad threshold",
        "missing model",
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(  # type: ignore[no-untyped-def]
    trustlab, tabular, tmp_path: Path, case: str
) -> None:
    args, message = _bad_inputs(tabular, tmp_path)[case]
    out = tmp_path / "out"
    result = trustlab("audit", *args, "--out", out)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in " ".join(lines)
    assert "Traceback" not in result.stderr
    assert not out.exists()
