"""The headless-Chromium helper: a page with a figure loads, and nothing of Chromium stays.

Chromium's renderers outlive its main process; removing the profile while they still write
to it once failed a clean-clone CI run (`Directory not empty: 'Default'`).
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path

import browser
import pytest

from servebench.process import live_processes

pytestmark = pytest.mark.system

# A 1x1 PNG: enough for the page to have an image that must decode.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def chromium_processes() -> list[int]:
    found = []
    for pid, entry, _ in live_processes():
        with contextlib.suppress(OSError):
            if b"servebench-chromium-" in (entry / "cmdline").read_bytes():
                found.append(pid)
    return found


def test_a_page_loads_and_chromium_leaves_nothing_behind(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    pixel = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
    page.write_text(
        f"<html><body><table><tr><td>Requests/sec</td></tr></table>"
        f"<img src='{pixel}'></body></html>"
    )
    for _ in range(3):  # the clean-up race showed up only now and then
        check = browser.check_report(page, tmp_path / "shot.png")
        assert (check.images, check.broken_images, check.tables) == (1, 0, 1)
        assert "Requests/sec" in check.text
        assert chromium_processes() == [], "Chromium processes outlived the check"
    assert not [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("servebench-chromium-*")]


def test_a_table_wider_than_the_window_is_reported(tmp_path: Path) -> None:
    """Past the window's right edge, or inside a box that scrolls sideways (which keeps the
    page itself narrow): both are too wide for a reader; a table that fits is not."""
    cells = "".join(f"<td>{i:012d}</td>" for i in range(200))
    page = tmp_path / "page.html"
    page.write_text(
        "<html><body><table id='fits'><tr><th>fits</th><td>1</td></tr></table>"
        f"<table><tr><th>past the edge</th>{cells}</tr></table>"
        f"<div style='overflow-x:auto'><table><tr><th>scrolled</th>{cells}</tr></table></div>"
        "</body></html>"
    )
    check = browser.check_report(page, tmp_path / "shot.png")
    assert len(check.too_wide) == 2, check.too_wide
    assert any("past the edge" in w for w in check.too_wide)
    assert any("scrolled" in w and "scrolls sideways" in w for w in check.too_wide)
    assert not any("fits" in w for w in check.too_wide)
    assert check.widest > browser.VIEWPORT[0]
