"""The three report files: self-contained HTML, strict JSON, Markdown; written atomically."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import pytest

from trustlab.audit import AuditReport, Figure, SectionResult, SummaryLine, Table, write_report
from trustlab.audit.render import render_html, render_json, render_markdown

# A 1x1 transparent PNG.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


def make_report() -> AuditReport:
    ok = SectionResult(
        name="performance",
        title="Performance",
        metrics={"accuracy": 0.5, "odd": math.nan, "nested": {"inf": math.inf}},
        tables=[Table("T <b>", ["a", "b|c"], [[1, 0.123456], ["<script>", None]])],
        figures=[Figure("Plot", PIXEL, "a pixel")],
        notes=["a note & more"],
    )
    missing = SectionResult(
        name="explanations",
        title="Explanations",
        status="not_available",
        reason="trustlab.explain is not available.",
    )
    return AuditReport(
        model={
            "source": "m.safetensors",
            "kind": "safetensors",
            "n_parameters": 3,
            "architecture": "mlp",
        },
        data={"name": "d.npz", "n_examples": 10},
        profile="quick",
        options={},
        thresholds={},
        summary=[
            SummaryLine(
                "performance",
                "Performance",
                "amber",
                "accuracy 0.5",
                "performance.accuracy",
                0.5,
                "green >= 0.9, amber >= 0.7, else red",
            ),
            SummaryLine("explanations", "Explanations", "grey", "not available: why"),
        ],
        sections=[ok, missing],
        trustlab_version="0.0",
    )


def test_html_is_self_contained_and_escaped() -> None:
    html = render_html(make_report())
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert f"data:image/png;base64,{PIXEL}" in html
    assert "green &gt;= 0.9, amber &gt;= 0.7, else red" in html
    assert "not available" in html and "trustlab.explain is not available." in html


def test_json_has_no_nan_and_keeps_every_number() -> None:
    data = json.loads(render_json(make_report()))
    metrics = data["sections"][0]["metrics"]
    assert metrics["accuracy"] == 0.5 and metrics["odd"] is None
    assert metrics["nested"]["inf"] is None
    assert data["summary"][0]["rule"].startswith("green")


def test_markdown_has_the_summary_and_escaped_tables() -> None:
    markdown = render_markdown(make_report())
    assert "| 🟠 amber | Performance | accuracy 0.5 |" in markdown
    assert "b\\|c" in markdown
    assert "**not available**: trustlab.explain is not available." in markdown


def test_write_report_replaces_the_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    (tmp_path / "report.html").write_text("old")
    paths = write_report(make_report(), tmp_path)
    assert sorted(paths) == ["report.html", "report.json", "report.md"]
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(paths)


def test_a_report_that_cannot_render_writes_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import trustlab.audit.render as render

    def broken(report: AuditReport) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(render, "render_markdown", broken)
    with pytest.raises(RuntimeError):
        render.write_report(make_report(), tmp_path / "out")
    assert not (tmp_path / "out").exists()
