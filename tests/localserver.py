"""A tiny HTTP server script run as a real process on 127.0.0.1, for the load-generator tests."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from servebench.process import free_port


@contextmanager
def local_server(script: str, probe: str, body: bytes | None = None) -> Iterator[str]:
    """Run `script` (Python source taking the port as its argument) and yield its base URL
    once `probe` (a path; POSTed with `body` when given) answers 200. Killed on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", script, str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                request = urllib.request.Request(base + probe, data=body)
                with urllib.request.urlopen(request, timeout=1) as answer:
                    assert answer.status == 200
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        proc.kill()
        proc.wait()
