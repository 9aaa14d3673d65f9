"""The rendered report as a reader sees it: headless Chromium loads it, figures and all."""

from __future__ import annotations

from pathlib import Path

import pytest

from servebench import browser

pytestmark = pytest.mark.e2e


def test_report_opens_in_chromium_with_every_figure(quick_run: Path) -> None:
    screenshot = quick_run / "report-screenshot.png"
    page = browser.check_report(quick_run / "report.html", screenshot)
    assert page.images >= 4
    assert page.broken_images == 0
    assert page.tables >= 2
    assert "Requests/sec" in page.text
    assert screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
