"""Load a page in headless Chromium and report what a user's browser would see.

The tests of the arena's pages and of the audit report use this one helper. It drives Debian's
Chromium (``/usr/bin/chromium``, or the binary named by ``TRUSTLAB_CHROMIUM``) through
Playwright's protocol client; Playwright's own browser downloads are never used. Where neither
Playwright nor Chromium is installed the calling test is skipped with the reason (``.ci/run``
installs both, so CI runs every browser test).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class PageResult:
    """What one page load produced."""

    status: int | None
    html: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def images_ok(self) -> bool:
        return not self.broken_images

    @property
    def clean(self) -> bool:
        """No console error, no uncaught exception, no failed request, no broken image."""
        return not (
            self.console_errors or self.page_errors or self.failed_requests or self.broken_images
        )


def chromium_path() -> str:
    """The Chromium binary to drive, or skip the test with the reason."""
    named = os.environ.get("TRUSTLAB_CHROMIUM")
    if named:
        return named
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is not installed (apt-get install chromium, or set TRUSTLAB_CHROMIUM)")


_BROKEN_IMAGES_JS = """
() => Array.from(document.images)
  .filter((img) => !img.complete || img.naturalWidth === 0)
  .map((img) => (img.currentSrc || img.src || '').slice(0, 80))
"""


def load_page(
    url: str,
    *,
    cookies: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    javascript: bool = True,
    timeout_s: float = 30.0,
) -> PageResult:
    """Open ``url`` in headless Chromium and collect errors, the HTML and broken images.

    ``cookies`` are Playwright cookie dicts (``name``, ``value``, ``url``); ``headers`` are sent
    with every request. ``javascript=False`` loads the page as a reader without scripts would.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    result = PageResult(status=None, html="")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            context = browser.new_context(
                java_script_enabled=javascript, extra_http_headers=headers or {}
            )
            if cookies:
                context.add_cookies(cookies)  # type: ignore[arg-type]
            page = context.new_page()
            page.on(
                "console",
                lambda msg: result.console_errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda exc: result.page_errors.append(str(exc)))
            page.on(
                "requestfailed",
                lambda req: result.failed_requests.append(f"{req.method} {req.url[:120]}"),
            )
            response = page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            result.status = response.status if response is not None else None
            result.html = page.content()
            result.text = page.inner_text("body") if page.query_selector("body") else ""
            if javascript:
                result.broken_images = list(page.evaluate(_BROKEN_IMAGES_JS))
            else:
                # Without scripts, decode each image in a second, scripted page of the same HTML.
                check = context.browser.new_page() if context.browser else context.new_page()
                check.set_content(result.html, wait_until="load")
                result.broken_images = list(check.evaluate(_BROKEN_IMAGES_JS))
                check.close()
        finally:
            browser.close()
    return result
