"""Faults with real processes: busy port, missing model, SIGTERM, SIGKILL under load,
clean-up on every exit path, loopback-only binding and no request bodies in logs."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servebench import process, registry
from servebench.models.serving_info import FILES, SERVING_FILE
from servebench.process import (
    RUN_TAG,
    PortBusyError,
    ServiceDiedError,
    ServiceProcess,
    current_run_tag,
    tagged_processes,
)

SERVICE_NAMES = list(registry.load_registry())
SEED = "I love you. I like you. I am your friend."
SIGTERM_LIMIT_S = 5.0
FAIL_FAST_LIMIT_S = 30.0

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc"),
]


@pytest.fixture()
def run_tag(monkeypatch: pytest.MonkeyPatch) -> str:
    """A run tag of this test alone, so leftovers of other tests cannot confuse it."""
    tag = f"faults-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv(RUN_TAG, tag)
    assert current_run_tag() == tag
    return tag


def wait_untagged(tag: str, timeout_s: float = 2.0) -> list[int]:
    """Tagged processes still alive after up to `timeout_s` (the kernel reaps asynchronously)."""
    deadline = time.monotonic() + timeout_s
    while (left := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            out.append(f"{pid}: {cmdline!r}")
        except OSError:
            out.append(f"{pid}: (gone)")
    return "; ".join(out)


def post(host: str, port: int, body: bytes, content_type: str | None = "application/json"):
    connection = http.client.HTTPConnection(host, port, timeout=60)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request("POST", "/age", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def listening_sockets(port: int) -> dict[str, list[str]]:
    """Local addresses (hex, as in /proc/net/tcp{,6}) of LISTEN sockets on `port`."""
    found: dict[str, list[str]] = {"tcp": [], "tcp6": []}
    for kind in found:
        table = Path(f"/proc/net/{kind}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found[kind].append(address)
    return found


@pytest.fixture(params=SERVICE_NAMES)
def built(
    request: pytest.FixtureRequest, built_services: dict[str, registry.Service]
) -> registry.Service:
    """Each registered service, built: one test per service."""
    return built_services[request.param]


# --- port in use ----------------------------------------------------------------------


@pytest.fixture()
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_busy_port_raises_port_busy_error(
    name: str, model_dir: Path, busy_port: int, tmp_path: Path, run_tag: str
) -> None:
    service = registry.load_registry()[name]
    proc = ServiceProcess(service, model_dir, tmp_path / "svc.log", port=busy_port)
    with pytest.raises(PortBusyError) as info:
        proc.start()
    message = str(info.value)
    assert str(busy_port) in message and "already in use" in message, message
    assert "127.0.0.1" in message, message
    assert proc.popen is None, "nothing may be started on a busy port"
    assert tagged_processes(run_tag) == []


def test_service_on_busy_port_exits_nonzero_with_message(
    built: registry.Service,
    model_dir: Path,
    busy_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_tag: str,
) -> None:
    """Bypass the harness's own check: the service itself must refuse the port."""
    name = built.name
    monkeypatch.setattr(process, "port_is_free", lambda host, port: True)
    log = tmp_path / "svc.log"
    started = time.monotonic()
    with pytest.raises(ServiceDiedError) as info:  # noqa: SIM117
        with ServiceProcess(built, model_dir, log, port=busy_port, ready_timeout_s=60):
            pass
    elapsed = time.monotonic() - started
    message = str(info.value)
    code = int(re.search(r"exited with code (-?\d+)", message).group(1))
    assert code != 0, message
    text = log.read_text(errors="replace")
    assert str(busy_port) in text and re.search(r"in use", text, re.I), text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    assert elapsed < FAIL_FAST_LIMIT_S, f"{name} took {elapsed:.1f} s to give up"
    assert wait_untagged(run_tag) == []


# --- missing model --------------------------------------------------------------------


def broken_model_dir(kind: str, model_dir: Path, target: Path) -> str | None:
    """Make `target` a model directory broken in the way `kind` says; return the file name
    the error must mention (None: the directory itself is the problem)."""
    if kind == "missing":
        return None
    target.mkdir()
    if kind == "empty":
        return SERVING_FILE
    # Empty stand-ins: every service must refuse before it loads anything.
    for file in FILES.values():
        (target / file).touch()
    serving = target / SERVING_FILE
    if kind == "corrupt-serving-info":
        serving.write_text('{"labels": ["NEGATIVE", "POS')
    elif kind == "lacks-listed-file":
        serving.write_text((model_dir / SERVING_FILE).read_text())
        (target / FILES["tokenizer"]).unlink()
        return FILES["tokenizer"]
    return SERVING_FILE


@pytest.mark.parametrize(
    "kind",
    ["missing", "empty", "no-serving-info", "corrupt-serving-info", "lacks-listed-file"],
)
def test_bad_model_dir_exits_nonzero_naming_it(
    built: registry.Service, kind: str, model_dir: Path, tmp_path: Path, run_tag: str
) -> None:
    name = built.name
    broken = tmp_path / f"bad-model-{kind}"
    culprit = broken_model_dir(kind, model_dir, broken)
    log = tmp_path / "svc.log"
    started = time.monotonic()
    with pytest.raises(ServiceDiedError) as info:  # noqa: SIM117
        with ServiceProcess(built, broken, log, ready_timeout_s=60):
            pass
    elapsed = time.monotonic() - started
    message = str(info.value)
    print(f"{name}: {kind} model dir -> exit in {elapsed:.2f} s")
    assert name in message, message
    code = int(re.search(r"exited with code (-?\d+)", message).group(1))
    assert code != 0, message
    assert str(broken) in message, f"the log tail must name {broken}:\n{message}"
    assert "make model" in message, f"the log tail must say how to fix it:\n{message}"
    if culprit is not None:
        assert culprit in message, f"the log tail must name {culprit}:\n{message}"
    assert "Traceback" not in log.read_text(errors="replace"), message
    assert elapsed < FAIL_FAST_LIMIT_S, f"{name} took {elapsed:.1f} s to exit"
    assert wait_untagged(run_tag) == []


# --- one fresh instance per service: default bind address, no body logging, SIGTERM ----

MARKER = f"zq-marker-{uuid.uuid4().hex}"


@pytest.fixture(scope="module", params=SERVICE_NAMES)
def terminated(
    request: pytest.FixtureRequest,
    model_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Start a service without --host, record its listeners, send bodies carrying MARKER,
    SIGTERM it and time the exit."""
    name = request.param
    service = built_services[name]
    argv = service.command
    i = argv.index("--host")
    assert argv[i + 1] == "{host}", argv
    default_host = dataclasses.replace(service, command=[*argv[:i], *argv[i + 2 :]])
    log = tmp_path_factory.mktemp(f"term-{name}") / "svc.log"
    facts: dict[str, Any] = {"name": name, "log": log}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("HOST", raising=False)
        tag = f"faults-term-{uuid.uuid4().hex[:12]}"
        mp.setenv(RUN_TAG, tag)
        with ServiceProcess(default_host, model_dir, log, ready_timeout_s=180) as proc:
            popen = proc.popen
            facts["port"] = proc.port
            facts["listeners"] = listening_sockets(proc.port)
            bodies = [
                (json.dumps({"inputs": f"{SEED} {MARKER}"}).encode(), "application/json"),
                (json.dumps({"inputs": 7, MARKER: MARKER}).encode(), "application/json"),
                (f'{{"inputs": "{MARKER}'.encode(), "application/json"),
                (json.dumps({"inputs": MARKER}).encode(), "text/plain"),
                (b'{"inputs": "\xff' + MARKER.encode() + b'"}', "application/json"),
            ]
            facts["statuses"] = [post(proc.host, proc.port, b, ct)[0] for b, ct in bodies]
            started = time.monotonic()
            os.kill(popen.pid, signal.SIGTERM)
            try:
                facts["returncode"] = popen.wait(timeout=SIGTERM_LIMIT_S + 5)
            except Exception:
                facts["returncode"] = None
            facts["stop_s"] = time.monotonic() - started
            facts["left_after_sigterm"] = describe(wait_untagged(tag, timeout_s=0.5))
        facts["left_after_exit"] = describe(wait_untagged(tag))
    return facts


def test_binds_loopback_only_by_default(terminated: dict[str, Any]) -> None:
    listeners = terminated["listeners"]
    assert listeners["tcp"] == ["0100007F"], f"{terminated['name']}: {listeners}"
    assert listeners["tcp6"] == [], f"{terminated['name']}: {listeners}"


def test_request_bodies_are_not_logged(terminated: dict[str, Any]) -> None:
    assert terminated["statuses"] == [200, 422, 400, 415, 400]
    text = terminated["log"].read_text(errors="replace")
    assert MARKER not in text, f"{terminated['name']} logged a request body:\n{text[-2000:]}"


def test_sigterm_stops_within_5s(terminated: dict[str, Any]) -> None:
    name, seconds = terminated["name"], terminated["stop_s"]
    print(f"{name}: exited {seconds:.2f} s after SIGTERM (code {terminated['returncode']})")
    assert terminated["returncode"] is not None, f"{name} still running after SIGTERM"
    assert seconds <= SIGTERM_LIMIT_S, f"{name} took {seconds:.2f} s to stop"
    assert terminated["left_after_sigterm"] == "", terminated
    assert terminated["left_after_exit"] == "", terminated


# --- death under load, clean-up on every exit path ------------------------------------


def load(host: str, port: int, stop: threading.Event, answered: list[int]) -> None:
    body = json.dumps({"inputs": SEED}).encode()
    while not stop.is_set():
        try:
            status, _ = post(host, port, body)
            answered.append(status)
        except OSError:
            time.sleep(0.01)


def workers_for(service: registry.Service) -> int:
    """Several worker processes where a service has them, so children must be cleaned up
    too; a batched Python service is one process (its one batcher would otherwise split)."""
    return 1 if service.batching and service.language == "python" else 2


def test_sigkill_under_load_is_detected_and_cleaned_up(
    built: registry.Service, model_dir: Path, tmp_path: Path, run_tag: str
) -> None:
    name = built.name
    log = tmp_path / "svc.log"
    stop = threading.Event()
    answered: list[int] = []
    threads: list[threading.Thread] = []
    try:
        with pytest.raises(RuntimeError, match="raised inside the with block"):  # noqa: SIM117
            with ServiceProcess(
                built, model_dir, log, workers=workers_for(built), ready_timeout_s=180
            ) as proc:
                assert proc.pid in tagged_processes(run_tag)
                threads = [
                    threading.Thread(
                        target=load, args=(proc.host, proc.port, stop, answered), daemon=True
                    )
                    for _ in range(4)
                ]
                for thread in threads:
                    thread.start()
                deadline = time.monotonic() + 30
                while len(answered) < 8 and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert len(answered) >= 8 and set(answered) == {200}, answered
                tagged = len(tagged_processes(run_tag))
                print(f"{name}: {tagged} tagged processes before SIGKILL")
                os.kill(proc.pid, signal.SIGKILL)
                with pytest.raises(ServiceDiedError) as info:
                    deadline = time.monotonic() + 5
                    while time.monotonic() < deadline:
                        proc.check_alive()
                        time.sleep(0.02)
                message = str(info.value)
                assert f"service {name} " in message and "code -9" in message, message
                raise RuntimeError("raised inside the with block")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=70)
    left = wait_untagged(run_tag)
    assert left == [], f"{name}: left behind {describe(left)}"


def test_a_connection_error_after_the_service_died_names_the_death(
    model_dir: Path, tmp_path: Path
) -> None:
    """The pipeline reports "exited", not the client's RemoteDisconnected, when a service is
    killed while a request is in flight."""
    service = registry.load_registry()["python"]
    with pytest.raises(ServiceDiedError, match="service python exited with code -9") as info:  # noqa: SIM117
        with ServiceProcess(service, model_dir, tmp_path / "svc.log", ready_timeout_s=180) as proc:
            os.kill(proc.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while proc.popen is not None and proc.popen.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            raise http.client.RemoteDisconnected("Remote end closed connection")
    assert isinstance(info.value.__context__, http.client.RemoteDisconnected)


def test_normal_exit_leaves_no_tagged_process(
    built: registry.Service, model_dir: Path, tmp_path: Path, run_tag: str
) -> None:
    name = built.name
    with ServiceProcess(
        built, model_dir, tmp_path / "svc.log", workers=workers_for(built), ready_timeout_s=180
    ) as proc:
        status, body = post(proc.host, proc.port, json.dumps({"inputs": SEED}).encode())
        assert status == 200 and json.loads(body)["label"] == "POSITIVE"
        assert proc.pid in tagged_processes(run_tag)
    left = wait_untagged(run_tag)
    assert left == [], f"{name}: left behind {describe(left)}"
