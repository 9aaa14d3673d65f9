"""The rendered report of a real quick run as a reader sees it, in headless Chromium at a
laptop's viewport (browser.VIEWPORT): first results on the first screen, no code, no
stderr, every figure loaded and captioned, no table or figure wider than the window, the
finished run's status."""

from __future__ import annotations

from pathlib import Path

import browser
import pytest

pytestmark = pytest.mark.e2e


def test_report_reads_as_a_report_in_chromium(quick_run: Path) -> None:
    screenshot = quick_run / "report-screenshot.png"
    first_screen = quick_run / "report-first-screen.png"
    page = browser.check_report(quick_run / "report.html", screenshot, first_screen)
    screen_height = browser.VIEWPORT[1]
    for name in ("seed_table", "first_figure"):
        top = page.tops[name]
        assert top is not None and top < screen_height, (name, top)
    assert page.counts["inputs"] == 0, "a code input area is shown"
    assert page.counts["stderr"] == 0, "stderr output is shown"
    assert page.images >= 4 and page.broken_images == 0
    assert page.uncaptioned_figures == 0 and page.images_outside_figures == 0
    assert page.images == page.counts["figures"]
    assert page.status == "complete"
    assert "running" not in page.text
    assert page.tables >= 2 and "Requests/sec" in page.text
    assert page.too_wide == (), page.too_wide
    assert page.widest <= page.page_width
    for shot in (screenshot, first_screen):
        assert shot.stat().st_size > 10_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
