"""report.html in headless Chromium: it loads, every image decodes, no console error, and it
reads the same without JavaScript."""

from __future__ import annotations

import pytest

from trustlab.audit import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_html(tabular, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("browser") / "report"
    report = run(tabular.model, tabular.data, out_dir=out, eps=0.05)
    assert any(section.figures for section in report.sections)
    return out / "report.html", report


@pytest.mark.parametrize("javascript", [True, False])
def test_report_loads_cleanly_in_chromium(report_html, javascript: bool) -> None:  # type: ignore[no-untyped-def]
    from browser import load_page

    path, report = report_html
    page = load_page(path.as_uri(), javascript=javascript)
    assert page.console_errors == []
    assert page.page_errors == []
    assert page.failed_requests == []
    assert page.images_ok, page.broken_images
    assert page.html.count("data:image/png;base64,") == sum(
        len(section.figures) for section in report.sections
    )
    for line in report.summary:
        assert line.title in page.text
