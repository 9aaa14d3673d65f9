"""The closed-loop vegeta driver (measure/vegeta_closed.py) against a real vegeta and a real
echo server on loopback: every body once, in order, at the concurrency asked for."""

from __future__ import annotations

import json
import textwrap
import urllib.request
from collections.abc import Iterator

import pytest
from localserver import local_server

from servebench.measure.vegeta_closed import parse_results, run_closed_loop, targets_jsonl

pytestmark = pytest.mark.unit

# Echoes each body's text back as the label, with a batch-size header, after `delay` seconds;
# counts the requests in flight so the test can see the concurrency it was driven at.
SERVER = textwrap.dedent(
    """
    import json, sys, threading, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self):
            out = json.dumps(state).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_POST(self):
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["inputs"]
            time.sleep(0.01)
            out = json.dumps({"label": text, "score": 0.5}).encode()
            with lock:
                state["now"] -= 1
            self.send_response(503 if text == "refuse" else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-batch-size", str(len(text) % 7 + 1))
            self.send_header("x-queue-time", "42")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)


@pytest.fixture
def server() -> Iterator[str]:
    with local_server(SERVER, "/state") as base:
        yield base


def test_targets_carry_one_body_each() -> None:
    lines = targets_jsonl("http://h/age", [b'{"inputs": "a"}', b'{"inputs": "b"}']).splitlines()
    assert [json.loads(line)["body"] for line in lines] == [
        "eyJpbnB1dHMiOiAiYSJ9",
        "eyJpbnB1dHMiOiAiYiJ9",
    ]
    assert json.loads(lines[0])["header"] == {"Content-Type": ["application/json"]}


def test_each_answer_is_matched_with_its_body_by_the_url_not_vegetas_number() -> None:
    """vegeta numbers a request and reads its target under two locks: request 0 may carry
    body 1. The body's index travels in the target URL and wins."""
    lines = targets_jsonl("http://h/age", [b"{}", b"{}"]).splitlines()
    assert [json.loads(line)["url"] for line in lines] == [
        "http://h/age?seq=0",
        "http://h/age?seq=1",
    ]
    assert json.loads(targets_jsonl("http://h/age?x=1", [b"{}"]))["url"] == "http://h/age?x=1&seq=0"
    text = (
        "1000000000,200,4000000,10,20,,eyJsYWJlbCI6ICJ4In0=,,0,POST,http://h/age?seq=1,\n"
        "2000000000,200,5000000,10,20,,eyJsYWJlbCI6ICJ5In0=,,1,POST,http://h/age?seq=0,\n"
    )
    frame = parse_results(text)
    assert list(frame["seq"]) == [0, 1] and list(frame["label"]) == ["y", "x"]


def test_parse_drops_vegetas_end_of_targets_row() -> None:
    text = (
        "2000000000,200,5000000,10,20,,eyJsYWJlbCI6ICJ4In0=,,1,POST,u,eC1iYXRjaC1zaXplOiAzDQo=\n"
        "1000000000,200,4000000,10,20,,eyJsYWJlbCI6ICJ5In0=,,0,POST,u,\n"
        "3000000000,0,0,0,0,no targets to attack,,,2,,,\n"
    )
    frame = parse_results(text)
    assert list(frame["seq"]) == [0, 1] and list(frame["label"]) == ["y", "x"]
    assert list(frame["offset_s"]) == [0.0, 1.0]
    assert frame["batch_size"].tolist()[1] == 3 and frame["batch_size"].isna().tolist()[0]


def test_closed_loop_sends_every_body_once_in_order_at_the_concurrency(server: str) -> None:
    texts = [f"text number {i}" for i in range(60)] + ["refuse"]
    bodies = [json.dumps({"inputs": t}).encode() for t in texts]
    run = run_closed_loop(server + "/age", bodies, concurrency=4)
    with urllib.request.urlopen(server + "/state") as answer:
        state = json.loads(answer.read())
    assert run.requested == 61 and len(run.records) == 61
    assert list(run.records["seq"]) == list(range(61))
    ok = run.records[run.records["status_code"] == 200]
    assert list(ok["label"]) == texts[:60]  # every answer is its own body's
    assert run.errors == 1 and run.answered == 61
    assert 0 < run.loadgen_cpu_s <= 2 * run.wall_s  # the attack's own CPU time
    assert state["peak"] == 4  # closed loop: never more in flight than workers
    assert list(ok["batch_size"]) == [len(t) % 7 + 1 for t in texts[:60]]
    assert set(ok["queue_us"]) == {42}
    # 61 requests of 10 ms over 4 workers: at least 15 rounds.
    assert run.total_s >= 0.15
