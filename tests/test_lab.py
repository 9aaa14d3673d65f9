"""`make lab`: JupyterLab answers at the URL it printed, offers the project's kernel, and stops
with nothing of its process group left.

It runs as whoever runs pytest: as root on CI, where Jupyter refuses to start without
--allow-root (the Makefile adds it for uid 0 only).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from servebench import paths
from servebench.process import free_port, group_members, stop_group

pytestmark = pytest.mark.system

URL_LINE = re.compile(r"^\[lab\] open (http://\S+/lab\?token=(\w+))", re.MULTILINE)
READY_TIMEOUT_S = 120.0  # two shared cores, possibly busy with another test's services


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def get_json(url: str, token: str) -> Any:
    status, body = get(url, token)
    assert status == 200, f"{url}: HTTP {status}"
    return json.loads(body)


def wait_for_lab(popen: subprocess.Popen[bytes], log: Path) -> tuple[str, str]:
    """The printed URL and token, once the URL answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert popen.poll() is None, f"make lab exited {popen.returncode}:\n{log.read_text()}"
        found = URL_LINE.search(log.read_text(errors="replace"))
        if found:
            try:
                if get(found[1])[0] == 200:
                    return found[1], found[2]
            except OSError:  # not listening yet
                pass
        time.sleep(0.25)
    raise AssertionError(f"make lab did not answer in {READY_TIMEOUT_S:.0f} s:\n{log.read_text()}")


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.parametrize("given", [True, False], ids=["LAB_TOKEN", "generated-token"])
def test_make_lab_serves_the_project_kernel_and_stops_cleanly(tmp_path: Path, given: bool) -> None:
    port = free_port()
    token = secrets.token_hex(16) if given else ""
    log = tmp_path / "lab.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            ["make", "--no-print-directory", "lab", f"LAB_PORT={port}", f"LAB_TOKEN={token}"],
            cwd=paths.ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: make, and Jupyter exec'd by its shell
        )
    try:
        url, printed = wait_for_lab(popen, log)
        assert url == f"http://127.0.0.1:{port}/lab?token={printed}"
        if given:
            assert printed == token
        else:
            assert len(printed) >= 32  # generated: not guessable
        members = group_members(popen.pid)
        assert any("jupyter" in cmdline(pid) for pid in members), members
        base = f"http://127.0.0.1:{port}"

        assert get(f"{base}/api/kernelspecs")[0] == 403  # the token is required
        specs = get_json(f"{base}/api/kernelspecs", printed)
        assert "servebench" in specs["kernelspecs"]
        assert specs["default"] == "servebench"  # new notebooks open on the project's kernel
        contents = get_json(f"{base}/api/contents", printed)
        assert "03_report.ipynb" in {item["name"] for item in contents["content"]}
    finally:
        stop_group(popen)
    assert group_members(popen.pid) == []
    # Nothing listens any more (a bind test would trip over the closed connections' TIME_WAIT).
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
