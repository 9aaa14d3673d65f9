"""measure/vegeta.py against a real vegeta and a real (tiny) HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from localserver import local_server

from servebench.analysis.stats import percentile
from servebench.loadgens import (
    VEGETA_ENV,
    VEGETA_VERSION,
    VegetaNotFoundError,
    vegeta_path,
    vegeta_version,
)
from servebench.measure import vegeta as openloop
from servebench.measure.vegeta import (
    OPENLOOP_COLUMNS,
    AttackResult,
    attack,
    find_max_rate,
    openloop_rows,
)
from servebench.process import free_port

# Threaded HTTP/1.1 server: every POST sleeps 20 ms, then answers a small JSON document.
SERVER = textwrap.dedent(
    """
    import json, sys, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms per answer

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(0.02)
            out = json.dumps({"label": "POSITIVE", "echo": len(body)}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

    Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    """
)
BODY = json.dumps({"text": "I love this movie"}).encode()


# vegeta is installed by `make setup`; a missing one fails these tests with its install hint.
pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def server_url():
    with local_server(SERVER, "/predict", BODY) as base:
        yield base + "/predict"


def test_attack_fixed_rate(server_url):
    result = attack(server_url, BODY, rate=20, duration_s=2, timeout_s=5)
    assert 38 <= result.requests <= 41
    assert result.success == 1.0
    assert result.ok == result.requests
    assert result.errors == {}
    assert 0.02 <= result.p50_s <= result.p90_s <= result.p99_s <= result.max_s < 5.0
    assert 10 <= result.throughput <= 21  # 20/s offered; a noisy machine slows answers
    assert 0 <= result.send_lag_max_s < 0.5  # the pacer kept to its schedule (2 s attack)
    assert result.meets(0.5)
    assert not result.meets(0.01)
    assert 0 < result.loadgen_cpu_s < result.wall_s  # 20 requests/s: a fraction of a CPU
    seqs = [r.seq for r in result.records]
    assert seqs == list(range(len(seqs)))
    assert all(r.status == 200 for r in result.records)
    corrected = result.latency_from_intended_s()
    assert all(c >= r.latency_s for c, r in zip(corrected, result.records, strict=True))


def test_attack_pinned_and_connection_errors(server_url):
    pinned = attack(server_url, BODY, rate=10, duration_s=1, cpus="0")
    assert pinned.cpus == "0" and pinned.success == 1.0
    dead = f"http://127.0.0.1:{free_port()}/predict"  # nobody listens there
    failed = attack(dead, BODY, rate=10, duration_s=1, timeout_s=1)
    assert failed.requests >= 9
    assert failed.success == 0.0
    assert all(r.status == 0 for r in failed.records)
    assert any("refused" in e for e in failed.errors)
    assert not failed.meets(10.0)


def test_find_max_rate(server_url):
    t0 = time.perf_counter()
    best, results = find_max_rate(
        server_url,
        BODY,
        bound_s=0.1,
        start_rate=200,  # python's threaded server holds ~2000 req/s here: grows, then bisects
        duration_s=1,
        max_steps=6,
        pause_s=0.3,
        timeout_s=5,
    )
    elapsed = time.perf_counter() - t0
    assert best > 0
    assert 1 <= len(results) <= 6
    assert [r.rate for r in results][:2] == [200.0, 400.0][: len(results)]
    passing = [r.rate for r in results if r.meets(0.1)]
    assert best == max(passing)
    assert all(r.rate > best for r in results if not r.meets(0.1))
    rows = openloop_rows("python", "short", results, bound_s=0.1)
    assert len(rows) == len(results)
    assert all(tuple(row) == OPENLOOP_COLUMNS for row in rows)
    assert sum(row["meets_bound"] for row in rows) == len(passing)
    assert elapsed < 60  # bounded by max_steps, not by the server


def _fake(rate_limit: float):
    """An attack stand-in: meets the bound up to rate_limit."""

    def fake_attack(url, body, rate, duration_s, timeout_s=10.0, cpus=None) -> AttackResult:
        p99 = 0.05 if rate <= rate_limit else 0.5
        n = int(rate * duration_s)
        return AttackResult(url, rate, duration_s, n, n, 1.0, rate, 0.01, 0.02, p99, p99,
                            0.0, 0.0, duration_s, cpus)  # fmt: skip

    return fake_attack


@pytest.mark.parametrize("limit", [0.5, 7, 10, 37, 160, 1000])
def test_search_logic(limit):
    best, results = find_max_rate(
        "http://x", b"{}", bound_s=0.1, start_rate=10, duration_s=1, max_steps=12,
        pause_s=0, attack_fn=_fake(limit),
    )  # fmt: skip
    assert best <= limit
    assert best >= 0.95 * limit - 1  # within the search resolution
    assert len(results) <= 12
    assert best == max((r.rate for r in results if r.meets(0.1)), default=0.0)


def test_percentiles_follow_the_projects_one_convention():
    records = [
        openloop.RequestRecord(seq=i, timestamp_s=i / 100, latency_s=v, status=200, error="")
        for i, v in enumerate([0.010, 0.020, 0.030, 0.040, 1.0])
    ]
    result = openloop.summarize(
        records, url="u", rate=100.0, duration_s=0.05, wall_s=0.05, cpus=None
    )
    latencies = [r.latency_s for r in records]
    assert result.p50_s == percentile(latencies, 50) == 0.030
    assert result.p99_s == percentile(latencies, 99)
    assert 0.040 < result.p99_s < 1.0  # interpolated, not the nearest rank (1.0)


def test_rate_flag():
    assert openloop._rate_flag(20) == "20/1s"
    assert openloop._rate_flag(12.5) == "12500/1000s"
    with pytest.raises(ValueError):
        openloop._rate_flag(0)


def test_missing_vegeta_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(VEGETA_ENV, str(tmp_path / "nope" / "vegeta"))
    with pytest.raises(VegetaNotFoundError, match=r"scripts/install_vegeta\.sh / make setup"):
        vegeta_path()
    with pytest.raises(VegetaNotFoundError):
        attack("http://127.0.0.1:1/", b"{}", rate=1, duration_s=1)


def test_vegeta_version():
    assert vegeta_version() == VEGETA_VERSION
