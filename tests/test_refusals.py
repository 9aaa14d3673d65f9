"""`make report` with a bad parameter: one line naming it, a quick non-zero exit, no run."""

from __future__ import annotations

import subprocess
import time

import pytest

from servebench import paths

pytestmark = pytest.mark.system

# What a new user types, and the start of the one line that must answer it.
BAD = {
    "services=[nope]": "error: services=['nope']: unknown service 'nope'",
    "concurrency=0": "error: concurrency=0: must be an integer >= 1",
    "server_cpus=7": "error: server_cpus='7': CPU 7 is not available here",
    "model_id=/nonexistent/dir": "error: model_id='/nonexistent/dir': no such directory",
    "repeat=5": "error: repeat: unknown parameter",
}


def runs() -> set[str]:
    return {p.name for p in paths.RUNS.iterdir()} if paths.RUNS.exists() else set()


@pytest.mark.parametrize(("override", "message"), BAD.items(), ids=list(BAD))
def test_make_report_refuses_a_bad_parameter_before_anything_starts(
    override: str, message: str
) -> None:
    before = runs()
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "report", f"SET={override}"],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1 and ours[0].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # set-up (already done) plus validation: seconds, not the minutes of an export or build
    assert elapsed < 60, elapsed
    assert runs() == before
