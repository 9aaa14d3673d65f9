"""Start, check and stop service processes so that none outlives the run that started it.

Three layers make sure of that: a context manager that stops the service on any exit
(including KeyboardInterrupt), the kernel's parent-death signal (the service gets SIGTERM
if the Python process that started it dies), and a tag in every service's environment
(`SERVEBENCH_RUN`) that lets the pipeline find and kill leftovers after a crash.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servebench import registry
from servebench.registry import Service

RUN_TAG = "SERVEBENCH_RUN"
PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A service could not be started, never became ready, or died."""


class PortBusyError(ServiceError):
    pass


class ServiceDiedError(ServiceError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    """Prefix a command with taskset when a CPU list is given."""
    return ["taskset", "-c", cpus, *argv] if cpus else argv


@dataclass(frozen=True)
class ChildRun:
    """A finished tool's output, its wall time and the CPU time it used (user + system)."""

    result: subprocess.CompletedProcess[str]
    wall_s: float
    cpu_s: float


def run_child(argv: list[str], timeout_s: float | None = None) -> ChildRun:
    """``argv`` run to its end, output captured, with the CPU time it used: the change in
    this process's reaped children's usage across the call. Only the load generators run
    this way, one at a time, while every other child (services, tools) lives on; a child
    reaped meanwhile by another thread would be counted too, and the harness has none."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    wall_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return ChildRun(result, wall_s, cpu_s)


@contextlib.contextmanager
def confined_to(cpus: list[int] | None) -> Iterator[None]:
    """Run every thread of this process on `cpus` for the block, then restore their masks.

    The orchestrator is the client of the sequential stage-timing requests and samples /proc
    during every load test; confined to the load generator's CPUs it never takes CPU time
    from the server it measures. Threads started inside the block inherit the mask.
    """
    if not cpus:
        yield
        return
    before = {}
    for tid in _own_threads():
        with contextlib.suppress(ProcessLookupError):  # a thread may end meanwhile
            before[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, cpus)
    try:
        yield
    finally:
        for tid, mask in before.items():
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, mask)


def _own_threads() -> list[int]:
    return [int(task.name) for task in Path("/proc/self/task").iterdir()]


def current_run_tag() -> str:
    return os.environ.get(RUN_TAG, f"pid{os.getpid()}")


def live_processes() -> Iterator[tuple[int, Path, list[str]]]:
    """(pid, /proc/<pid>, stat fields after the command name) of every process that is not
    a zombie; processes that vanish while being read are skipped."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            yield int(entry.name), entry, fields


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment carries SERVEBENCH_RUN=<tag>."""
    needle = f"{RUN_TAG}={tag}".encode()
    found = []
    for pid, entry, _ in live_processes():
        if pid == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


def kill_tagged(tag: str, grace_s: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every live process tagged with this run; returns their pids."""
    victims = tagged_processes(tag)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and tagged_processes(tag):
        time.sleep(0.1)
    for pid in tagged_processes(tag):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return victims


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc/<pid>/stat."""
    return [pid for pid, _, fields in live_processes() if int(fields[2]) == pgid]


def stop_group(popen: subprocess.Popen[Any], grace_s: float = 5.0) -> int | None:
    """Stop a process started with start_new_session=True and every member of its group.

    SIGTERM to the group, SIGKILL after the grace period, then wait until no member is
    left: children that outlive the leader (uvicorn workers, Chromium's renderers) may
    still be writing to files the caller is about to remove.
    """
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=grace_s)
    deadline = time.monotonic() + grace_s
    while group_members(popen.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait()
    deadline = time.monotonic() + grace_s
    while group_members(popen.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return popen.returncode


def http_get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


@dataclass
class ServiceProcess:
    """One running service; use as a context manager (`with ServiceProcess(...) as svc:`)."""

    service: Service
    model_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    port: int = 0
    threads: int = 1
    workers: int = 1
    cpus: str | None = None
    ready_timeout_s: float = 120.0
    extra_env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    spawned_at: float = 0.0
    ready_at: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ServiceError(f"{self.service.name} is not running")
        return self.popen.pid

    def start(self) -> ServiceProcess:
        if self.port == 0:
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            raise PortBusyError(
                f"port {self.port} on {self.host} is already in use; stop whatever listens "
                f"there (`ss -ltnp 'sport = :{self.port}'`) or choose another port"
            )
        binary = self.service.binary_path()
        if binary is not None and not binary.is_file():
            raise ServiceError(
                f"{self.service.name}: {binary} is not built; run `make build` "
                "(or the pipeline's build step) first"
            )
        argv, env = registry.launch_command(
            self.service,
            model_dir=self.model_dir,
            host=self.host,
            port=self.port,
            threads=self.threads,
            workers=self.workers,
        )
        env[RUN_TAG] = current_run_tag()
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.spawned_at = time.perf_counter()
        self.popen = subprocess.Popen(
            pinned(argv, self.cpus),
            cwd=registry.paths.ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        return self

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise ServiceDiedError(
                f"service {self.service.name} exited with code {self.popen.returncode}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready(self) -> float:
        """Poll the readiness route; returns seconds from spawn to ready."""
        deadline = time.monotonic() + self.ready_timeout_s
        url = self.url + self.service.ready
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError, ValueError):
                status, _ = http_get_json(url, timeout=1.0)
                if status == 200:
                    self.ready_at = time.perf_counter()
                    return self.ready_at - self.spawned_at
            time.sleep(0.05)
        self.stop()
        raise ServiceError(
            f"service {self.service.name} did not answer {url} "
            f"within {self.ready_timeout_s:.0f} s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the service's process group, SIGKILL it after the grace period."""
        if self.popen is None:
            return None
        popen, self.popen = self.popen, None
        return stop_group(popen, grace_s)

    def __enter__(self) -> ServiceProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, _type: object, error: BaseException | None, _tb: object) -> None:
        try:
            # A service killed mid-request surfaces as what the client saw (a reset or
            # refused connection); name the cause instead: the service exited.
            if isinstance(error, OSError | http.client.HTTPException):
                self.check_alive()
        finally:
            self.stop()
