"""measure/vegeta.py against a real vegeta and a real (tiny) HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import math
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
    bracket,
    find_rates,
    next_rate,
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


def test_find_rates(server_url):
    t0 = time.perf_counter()
    brackets, results = find_rates(
        server_url,
        BODY,
        bounds_s=[0.1, 0.05],
        start_rate=200,  # python's threaded server holds ~2000 req/s here: grows, then bisects
        duration_s=1,
        max_steps=6,
        pause_s=0.3,
        timeout_s=5,
    )
    elapsed = time.perf_counter() - t0
    assert list(brackets) == [0.05, 0.1]  # tightest first
    assert 1 <= len(results) <= 6
    assert [r.rate for r in results][:2] == [200.0, 400.0][: len(results)]
    for bound, found in brackets.items():
        passing = [r.rate for r in results if r.meets(bound)]
        assert found.met == max(passing, default=0.0)
        assert found.missed == min((r.rate for r in results if r.rate > found.met
                                    and not r.meets(bound)), default=math.inf)  # fmt: skip
    assert brackets[0.05].met <= brackets[0.1].met  # a looser bound is met at least as high
    rows = openloop_rows("python", "short", results)
    assert len(rows) == len(results)
    assert all(tuple(row) == OPENLOOP_COLUMNS for row in rows)
    assert [row["clean"] for row in rows] == [r.clean for r in results]
    assert elapsed < 60  # bounded by max_steps, not by the server


def _fake(limits: dict[float, float]):
    """An attack stand-in: p99 rises with the rate so that each bound is met up to its
    limit (limits: bound -> highest rate meeting it)."""

    def fake_attack(url, body, rate, duration_s, timeout_s=10.0, cpus=None) -> AttackResult:
        met = [bound for bound, limit in limits.items() if rate <= limit]
        p99 = min(met) * 0.9 if met else 10.0
        n = int(rate * duration_s)
        return AttackResult(url, rate, duration_s, n, n, 1.0, rate, 0.01, 0.02, p99, p99,
                            0.0, 0.0, duration_s, cpus)  # fmt: skip

    return fake_attack


@pytest.mark.parametrize(
    "limits",
    [
        {0.05: 0.5, 0.1: 0.7, 0.25: 0.9},  # no rate meets any bound
        {0.05: 7, 0.1: 9, 0.25: 10},
        {0.05: 30, 0.1: 37, 0.25: 45},
        {0.05: 160, 0.1: 160, 0.25: 161},
        {0.05: 900, 0.1: 1000, 0.25: 1200},
    ],
)
def test_search_logic_brackets_every_bound(limits):
    brackets, results = find_rates(
        "http://x", b"{}", bounds_s=list(limits), start_rate=10, duration_s=1, max_steps=20,
        pause_s=0, growth=2.0, attack_fn=_fake(limits),
    )  # fmt: skip
    assert len(results) <= 20
    for bound, limit in limits.items():
        found = brackets[bound]
        assert found.met <= limit < found.missed  # the limit lies in the bracket
        assert found.met >= 0.95 * limit - 1  # within the search's resolution
        assert found.met == max((r.rate for r in results if r.meets(bound)), default=0.0)


def test_one_series_serves_every_bound() -> None:
    """Three bounds cost fewer attacks than three searches: the tight bound's attacks raise
    the looser brackets' lower ends."""
    limits = {0.05: 300, 0.1: 340, 0.25: 380}
    _, together = find_rates(
        "http://x", b"{}", bounds_s=list(limits), start_rate=200, duration_s=1, max_steps=40,
        pause_s=0, growth=1.25, attack_fn=_fake(limits),
    )  # fmt: skip
    apart = 0
    for bound in limits:
        _, alone = find_rates(
            "http://x", b"{}", bounds_s=[bound], start_rate=200, duration_s=1, max_steps=40,
            pause_s=0, growth=1.25, attack_fn=_fake({bound: limits[bound]}),
        )  # fmt: skip
        apart += len(alone)
    assert len(together) < apart


def test_next_rate_grows_then_bisects_the_tightest_open_bracket() -> None:
    fake = _fake({0.05: 100, 0.25: 150})

    def done(*rates: float) -> list[AttackResult]:
        return [fake("u", b"", r, 1) for r in rates]

    choose = lambda results: next_rate(results, [0.25, 0.05], 80, growth=1.25, resolution=0.05)  # noqa: E731
    assert choose([]) == 80  # the start
    assert choose(done(200)) == 160  # the start missed every bound: down by the growth
    assert choose(done(80)) == 100  # nothing missed yet: grow
    assert choose(done(80, 100)) == 125
    assert choose(done(80, 100, 125)) == 112  # 0.05 ms's bracket (100, 125) first
    assert bracket(done(80, 100, 125), 0.25).met == 125  # the tight bound's attacks count
    assert choose(done(80, 100, 125, 112, 106, 103, 101)) == 156  # 0.05 resolved: 0.25 grows
    assert choose(done(80, 100, 101, 150, 151)) is None  # both within 1 req/s


def test_a_dirty_attack_meets_no_bound() -> None:
    sent = AttackResult("u", 100, 1, 100, 99, 0.99, 99, 0.01, 0.02, 0.03, 0.03, 0, 0, 1, None)
    assert not sent.clean and not sent.meets(10.0)
    short = AttackResult("u", 100, 1, 90, 90, 1.0, 90, 0.01, 0.02, 0.03, 0.03, 0, 0, 1, None)
    assert not short.clean  # fewer than 98 % of the asked requests were sent
    fine = AttackResult("u", 100, 1, 100, 100, 1.0, 100, 0.01, 0.02, 0.03, 0.03, 0, 0, 1, None)
    assert fine.clean and fine.meets(0.03) and not fine.meets(0.029)


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
