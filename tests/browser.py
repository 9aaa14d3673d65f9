"""Open a rendered report in headless Chromium, as a reader would, over the DevTools protocol.

Used by the report tests: at a reader's viewport (:data:`VIEWPORT`), every figure must load
and carry a caption, no code or stderr may show, the first results must be on the first
screen, no table or figure may be wider than the window; screenshots of the first screen
and of the whole page are saved beside the report.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websocket

from servebench.process import free_port, stop_group

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


#: A laptop-sized window: what "the first screen" means in the report's checks.
VIEWPORT = (1400, 1000)
#: Elements whose count the report checks: nbconvert's code input areas and prompts (in the
#: classic and the lab templates), stderr outputs, and figures.
REPORT_COUNTS = {
    "inputs": ".jp-InputArea, .input_area, .jp-CodeCell .jp-InputArea, .jp-InputPrompt, "
    ".input_prompt, .jp-OutputPrompt, .output_prompt",
    "stderr": '[data-mime-type="application/vnd.jupyter.stderr"], .output_stderr, '
    ".jp-RenderedText[data-mime-type*=stderr]",
    "figures": "figure",
}
#: Elements whose position the report checks: the seed table and the first figure's image.
REPORT_TOPS = {"seed_table": "#seed-table", "first_figure": "figure img"}
#: Elements that must fit the viewport's width (:data:`PROBE`'s ``wide``).
FITTING = "table, figure, img"
#: Counts, positions (top of the first match, None when absent), captions and the elements
#: wider than the window, in one call. An element counts as too wide when its right edge is
#: past the viewport or when a box around it scrolls sideways: a table in a scrolling row
#: does not widen the page, but the reader still needs the scroll bar to see all of it.
PROBE = """(() => {
  const counts = {}, tops = {};
  for (const [k, sel] of Object.entries(%s)) counts[k] = document.querySelectorAll(sel).length;
  for (const [k, sel] of Object.entries(%s)) {
    const el = document.querySelector(sel);
    tops[k] = el ? el.getBoundingClientRect().top + window.scrollY : null;
  }
  const captioned = f => {
    const c = f.querySelector('figcaption');
    return c !== null && c.textContent.trim().length > 0;
  };
  const status = document.querySelector('#run-status');
  const limit = document.documentElement.clientWidth;
  const scrolled = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible' && a.scrollWidth > a.clientWidth + 1)
        return true;
    }
    return false;
  };
  const named = el => {
    const heads = Array.from(el.querySelectorAll('th')).slice(0, 4).map(t => t.textContent.trim());
    const img = el.tagName === 'IMG' ? el : el.querySelector('img');
    return el.tagName.toLowerCase() + ' ' + (heads.length ? heads.join(' | ') : img ? img.alt : '');
  };
  const fitting = Array.from(document.querySelectorAll(%s)).map(el => ({
    name: named(el), right: el.getBoundingClientRect().right + window.scrollX,
    scrolled: scrolled(el),
  }));
  return {
    counts, tops,
    uncaptioned: Array.from(document.querySelectorAll('figure')).filter(f => !captioned(f)).length,
    outside: Array.from(document.images).filter(i => !i.closest('figure')).length,
    status: status ? status.textContent.trim() : '',
    height: document.documentElement.scrollHeight,
    limit,
    widest: Math.max(0, ...fitting.map(f => f.right)),
    wide: fitting.filter(f => f.right > limit + 0.5 || f.scrolled)
                 .map(f => `${f.name} (right edge ${Math.round(f.right)} px`
                           + (f.scrolled ? ', scrolls sideways)' : ')')),
  };
})()"""


class BrowserError(RuntimeError):
    pass


@dataclass(frozen=True)
class PageCheck:
    images: int
    broken_images: int
    tables: int
    text: str
    screenshot: Path
    #: The page's height (px) at the viewport's width.
    height: int
    #: REPORT_COUNTS' name -> how many elements match.
    counts: dict[str, int]
    #: REPORT_TOPS' name -> top (px from the page's top) of the first match; None if absent.
    tops: dict[str, float | None]
    #: <figure>s without a non-empty <figcaption>, and images outside any <figure>.
    uncaptioned_figures: int
    images_outside_figures: int
    #: The text of the run's status (#run-status; '' when the page has none).
    status: str
    #: A screenshot of the first screen (VIEWPORT), when asked for.
    first_screen: Path | None
    #: The page's width (px, without a scroll bar) and the right edge of the widest
    #: table, figure or image in it.
    page_width: int = VIEWPORT[0]
    widest: float = 0.0
    #: The tables, figures and images (FITTING) past the window's right edge or in a box
    #: that scrolls sideways, each named by its first headers (or image) and its right edge.
    too_wide: tuple[str, ...] = ()


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("Chromium is missing: apt-get install chromium chromium-driver")


class DevTools:
    def __init__(self, ws_url: str) -> None:
        self.socket = websocket.create_connection(ws_url, timeout=60)
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")


@contextlib.contextmanager
def chromium() -> Iterator[DevTools]:
    """Headless Chromium with a fresh profile, stopped with all its processes before the
    profile directory is removed (its renderers and GPU process outlive the main one)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="servebench-chromium-") as profile:
        process = subprocess.Popen(
            [
                chromium_path(),
                *CHROMIUM_FLAGS,
                f"--remote-debugging-port={port}",
                f"--user-data-dir={profile}",
                f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        tools: DevTools | None = None
        try:
            tools = DevTools(page_socket(port))
            yield tools
        finally:
            if tools is not None:
                tools.socket.close()
            stop_group(process, grace_s=10)


def page_socket(port: int, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        time.sleep(0.2)
    raise BrowserError("Chromium did not open its DevTools port")


def check_report(
    report: Path, screenshot: Path, first_screen: Path | None = None, script: str = ""
) -> PageCheck:
    """Load the report at :data:`VIEWPORT`, run ``script`` in the page (if given: to change
    the page as a different run would), measure what the report's tests check (images
    that failed to decode, counts, positions, captions, status), save the first screen to
    ``first_screen`` (if given) and the whole page (up to 16,000 px) to ``screenshot``."""
    width, height = VIEWPORT
    with chromium() as tools:
        tools.call("Page.enable")
        viewport(tools, width, height)
        tools.call("Page.navigate", url=report.resolve().as_uri())
        deadline = time.monotonic() + 60
        while tools.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise BrowserError(f"{report} did not finish loading")
            time.sleep(0.2)
        if script:
            tools.evaluate(script)
        images = tools.evaluate("document.images.length")
        broken = tools.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length"
        )
        tables = tools.evaluate("document.querySelectorAll('table').length")
        text = tools.evaluate("document.body.innerText")
        probe = tools.evaluate(
            PROBE % (json.dumps(REPORT_COUNTS), json.dumps(REPORT_TOPS), json.dumps(FITTING))
        )
        if first_screen is not None:
            first = tools.call("Page.captureScreenshot", format="png")
            first_screen.write_bytes(base64.b64decode(first["data"]))
        viewport(tools, width, min(int(probe["height"]), 16000))
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return PageCheck(
        images=images,
        broken_images=broken,
        tables=tables,
        text=str(text),
        screenshot=screenshot,
        height=int(probe["height"]),
        counts={k: int(v) for k, v in probe["counts"].items()},
        tops={k: None if v is None else float(v) for k, v in probe["tops"].items()},
        uncaptioned_figures=int(probe["uncaptioned"]),
        images_outside_figures=int(probe["outside"]),
        status=str(probe["status"]),
        first_screen=first_screen,
        page_width=int(probe["limit"]),
        widest=float(probe["widest"]),
        too_wide=tuple(str(w) for w in probe["wide"]),
    )


def viewport(tools: DevTools, width: int, height: int) -> None:
    tools.call(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
