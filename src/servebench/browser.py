"""Open a rendered report in headless Chromium, as a reader would, over the DevTools protocol.

Used by the report test: every figure must load, the results table must be there, and a
screenshot of the page is saved beside the report.
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


class BrowserError(RuntimeError):
    pass


@dataclass(frozen=True)
class PageCheck:
    images: int
    broken_images: int
    tables: int
    text: str
    screenshot: Path


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
                "--window-size=1280,2000",
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


def check_report(report: Path, screenshot: Path) -> PageCheck:
    """Load the report, count images that failed to decode, and save a full-page screenshot."""
    with chromium() as tools:
        tools.call("Page.enable")
        tools.call("Page.navigate", url=report.resolve().as_uri())
        deadline = time.monotonic() + 60
        while tools.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise BrowserError(f"{report} did not finish loading")
            time.sleep(0.2)
        images = tools.evaluate("document.images.length")
        broken = tools.evaluate(
            "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).length"
        )
        tables = tools.evaluate("document.querySelectorAll('table').length")
        text = tools.evaluate("document.body.innerText")
        height = tools.evaluate("document.documentElement.scrollHeight")
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=min(int(height), 16000),
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    return PageCheck(images, broken, tables, str(text), screenshot)
