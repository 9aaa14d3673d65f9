"""A resident timing tool: one long-lived process on the server CPUs, asked by stdin lines.

The drift probe (measure/drift.py) and the in-process loops and batch paths timed inside the
rounds (measure/inprocess.py) load a model once and are asked many times during a run, so a
request costs a fraction of a second and times the machine, not a start-up. The protocol
(service/registry.yaml, "in-process tools"): one request per stdin line, answered by lines on
stdout ending with an empty line; end of input ends the process.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Self

from servebench import paths
from servebench.process import RUN_TAG, _die_with_parent, current_run_tag, pinned


class ResidentError(RuntimeError):
    """The tool could not start, stopped, or answered out of protocol; says which tool."""


class Resident:
    """The tool's process (a context manager); :meth:`ask` sends one request."""

    def __init__(
        self,
        what: str,
        command: list[str],
        *,
        threads: int,
        cpus: str | None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.what = what
        self.command = pinned(command, cpus)
        self.threads = threads
        self.extra_env = env or {}
        self.popen: subprocess.Popen[str] | None = None
        self.started = 0.0

    def __enter__(self) -> Self:
        env = {
            **os.environ,
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": str(self.threads),
            "USE_TORCH": "0",
            RUN_TAG: current_run_tag(),
            **self.extra_env,
        }
        self.popen = subprocess.Popen(
            self.command,
            cwd=paths.ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_die_with_parent,
        )
        self.started = time.monotonic()
        return self

    def ask(self, request: str) -> list[str]:
        """The answer's lines (without the closing empty line) to one request line."""
        popen = self._running()
        assert popen.stdin is not None and popen.stdout is not None
        try:
            popen.stdin.write(request + "\n")
            popen.stdin.flush()
        except BrokenPipeError:
            raise ResidentError(f"{self.what} stopped: {self._stderr(popen)}") from None
        lines = []
        while True:
            line = popen.stdout.readline()
            if not line:
                raise ResidentError(f"{self.what} stopped: {self._stderr(popen)}")
            if not line.strip():
                return lines
            lines.append(line.rstrip("\n"))

    def _running(self) -> subprocess.Popen[str]:
        if self.popen is None:
            raise ResidentError(f"{self.what} is not started")
        if self.popen.poll() is not None:
            raise ResidentError(f"{self.what} exited: {self._stderr(self.popen)}")
        return self.popen

    @staticmethod
    def _stderr(popen: subprocess.Popen[str]) -> str:
        if popen.poll() is None:
            popen.kill()
        _, err = popen.communicate(timeout=10)
        return err.strip()[-600:] or f"exit status {popen.returncode}"

    def __exit__(self, *_: object) -> None:
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        assert popen.stdin is not None
        popen.stdin.close()  # end of input: the loop returns
        try:
            popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
