"""Open-loop, latency-bounded throughput with vegeta (the MLPerf "Server" idea).

A closed-loop generator (hey) only sends when an earlier answer came back, so a slow server slows
the generator down and the queueing delay never shows up in the latencies (coordinated
omission). vegeta is open loop: its pacer releases requests at a fixed rate whatever happens to
earlier ones. The score is the highest rate whose p99 latency stays under a bound with every
answer 2xx, for each of several bounds from one series of attacks (``find_rates``).

How vegeta (v12.13.0, ``lib/attack.go``) measures latency
---------------------------------------------------------
The pacer (``ConstantPacer``) sleeps until request *i* is due at ``began + (i+1)/rate`` (and
sends at once when it is behind) and hands a tick to an idle worker goroutine; when all workers
are busy it starts a new one (up to ``-max-workers``, which we set very large). The worker stamps
``Timestamp = now`` when it picks the tick up, and ``Latency = time.Since(Timestamp)`` after the
whole response body has been read (it includes connecting, writing the request, server time and
reading the answer). So latency is measured from the **actual** send time, not from the intended
one. With unlimited workers and unlimited connections the two differ only by the generator's own
scheduling delay (pacer oversleep, goroutine start-up, a starved CPU), never by waiting for the
server. We measure that delay instead of trusting it: for request ``seq`` the intended time is
``t0 + (seq+1)/rate`` with ``t0`` chosen so that the least-late request was on time, and
``send_lag = Timestamp - intended``. ``AttackResult`` reports its p99 and max next to the
latencies, and ``latency_from_intended_s`` gives latency counted from the intended send time (the
wrk2 / ``oha --latency-correction`` convention) for whoever wants it. The percentiles in
``openloop.csv`` are vegeta's own (from the actual send).

Percentiles follow the project's one convention (``analysis.stats.percentile``: linear
interpolation between order statistics) over all requests, failed ones included. Success counts
2xx only (vegeta's own report also counts 3xx). Throughput is answers with 2xx divided by (end
of the last answer minus the first send), as in ``vegeta report``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from servebench.analysis.stats import percentile, rate_bracket
from servebench.loadgens import vegeta_path
from servebench.process import ChildRun, run_child

OPENLOOP_COLUMNS = (
    "service",
    "payload",
    "rate",
    "duration_s",
    "requests",
    "success",
    "throughput",
    "p50_s",
    "p90_s",
    "p99_s",
    "max_s",
    "clean",
    "send_lag_p99_s",
    "loadgen_cpu_s",
    "loadgen_wall_s",
)


@dataclass(frozen=True)
class RequestRecord:
    """One request as vegeta recorded it."""

    seq: int
    timestamp_s: float  # Unix time the worker sent it (actual, not intended)
    latency_s: float  # from the actual send to the end of the response body
    status: int  # 0 when no HTTP answer arrived (timeout, connection refused, ...)
    error: str
    send_lag_s: float = 0.0  # actual minus intended send time (see module doc)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class AttackResult:
    url: str
    rate: float  # asked, requests/s
    duration_s: float  # asked
    requests: int
    ok: int  # 2xx answers
    success: float  # ok / requests
    throughput: float  # 2xx answers per second
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float
    send_lag_p99_s: float
    send_lag_max_s: float
    wall_s: float  # the attack subprocess, including waiting for the last answers
    cpus: str | None
    loadgen_cpu_s: float = math.nan  # the attack's CPU time (user + system)
    errors: dict[str, int] = field(default_factory=dict)  # error text -> count
    records: list[RequestRecord] = field(default_factory=list, repr=False)

    @property
    def expected_requests(self) -> int:
        return math.floor(self.rate * self.duration_s + 1e-9)

    @property
    def clean(self) -> bool:
        """Every answer 2xx and the asked rate actually sent: the attack can meet a bound."""
        return (
            self.requests > 0
            and self.ok == self.requests
            and self.requests >= 0.98 * self.expected_requests
        )

    def meets(self, bound_s: float) -> bool:
        """Clean, with its p99 within the bound."""
        return self.clean and self.p99_s <= bound_s

    def latency_from_intended_s(self) -> list[float]:
        """Latencies counted from each request's intended send time."""
        return [r.latency_s + r.send_lag_s for r in self.records]


def _rate_flag(rate: float) -> str:
    """vegeta wants an integer count per time unit: 20 -> '20/1s', 12.5 -> '12500/1000s'."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    if float(rate).is_integer():
        return f"{int(rate)}/1s"
    return f"{round(rate * 1000)}/1000s"


def parse_results_csv(text: str, rate: float) -> list[RequestRecord]:
    """Records from ``vegeta encode -to csv``, with send lag computed for the given rate."""
    raw = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        ts_ns, code, latency_ns, _bout, _bin, error = row[:6]
        seq = int(row[8])
        raw.append((seq, int(ts_ns), int(latency_ns), int(code), error))
    raw.sort()
    # Intended send of seq i: t0 + (i+1)/rate; t0 such that the least-late request is on time.
    # Work in ns relative to the first send: Unix ns (~1.7e18) do not fit a float's 53 bits.
    base = min((ts for _, ts, *_ in raw), default=0)
    interval_ns = 1e9 / rate
    t0 = min((ts - base - (seq + 1) * interval_ns for seq, ts, *_ in raw), default=0.0)
    return [
        RequestRecord(
            seq=seq,
            timestamp_s=ts / 1e9,
            latency_s=lat / 1e9,
            status=code,
            error=error,
            send_lag_s=max(0.0, (ts - base - t0 - (seq + 1) * interval_ns) / 1e9),
        )
        for seq, ts, lat, code, error in raw
    ]


def summarize(
    records: list[RequestRecord],
    *,
    url: str,
    rate: float,
    duration_s: float,
    wall_s: float,
    cpus: str | None,
) -> AttackResult:
    latencies = [r.latency_s for r in records]
    lags = [r.send_lag_s for r in records]
    ok = sum(r.ok for r in records)
    span = 0.0
    if records:
        span = max(r.timestamp_s + r.latency_s for r in records) - min(
            r.timestamp_s for r in records
        )
    errors: dict[str, int] = {}
    for r in records:
        if not r.ok:
            key = r.error or f"HTTP {r.status}"
            errors[key] = errors.get(key, 0) + 1
    return AttackResult(
        url=url,
        rate=rate,
        duration_s=duration_s,
        requests=len(records),
        ok=ok,
        success=ok / len(records) if records else 0.0,
        throughput=ok / span if span > 0 else 0.0,
        p50_s=percentile(latencies, 50),
        p90_s=percentile(latencies, 90),
        p99_s=percentile(latencies, 99),
        max_s=max(latencies, default=math.nan),
        send_lag_p99_s=percentile(lags, 99),
        send_lag_max_s=max(lags, default=math.nan),
        wall_s=wall_s,
        cpus=cpus,
        errors=errors,
        records=records,
    )


def attack(
    url: str,
    body: bytes,
    rate: float,
    duration_s: float,
    timeout_s: float = 10.0,
    cpus: str | None = None,
    *,
    max_workers: int = 100_000,
    raw_path: Path | None = None,
) -> AttackResult:
    """POST body (application/json) to url at a fixed rate for duration_s seconds.

    Runs ``vegeta attack`` (under ``taskset -c cpus`` when cpus is given; Go sizes GOMAXPROCS to
    that set) writing its binary results to a file, then ``vegeta encode -to csv`` after the
    attack so decoding does not compete with the attack for CPU. ``raw_path`` keeps vegeta's
    binary results file (readable later with ``vegeta report`` / ``vegeta encode``).
    """
    vegeta = vegeta_path()
    with tempfile.TemporaryDirectory(prefix="servebench-vegeta-") as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(body)
        targets = Path(tmp) / "targets.txt"
        targets.write_text(f"POST {url}\nContent-Type: application/json\n@{body_file}\n")
        results = raw_path or Path(tmp) / "results.bin"
        flags = [
            f"-targets={targets}",
            f"-rate={_rate_flag(rate)}",
            f"-duration={round(duration_s * 1000)}ms",
            f"-timeout={round(timeout_s * 1000)}ms",
            f"-max-workers={max_workers}",
            "-max-body=0",  # bodies are read and discarded, not kept in the results
        ]
        encoded, attack = attack_and_encode(vegeta, flags, results, cpus)
    records = parse_results_csv(encoded, rate)
    result = summarize(
        records, url=url, rate=rate, duration_s=duration_s, wall_s=attack.wall_s, cpus=cpus
    )
    return dataclasses.replace(result, loadgen_cpu_s=attack.cpu_s)


def attack_and_encode(
    vegeta: Path, flags: list[str], results: Path, cpus: str | None
) -> tuple[str, ChildRun]:
    """Run ``vegeta attack <flags> -output=<results>`` (pinned to `cpus`), then decode the
    results to CSV (after the attack, so decoding never competes with it for CPU). Returns
    the CSV text and the attack's run (its wall time and CPU time)."""
    cmd = [str(vegeta), "attack", *flags, f"-output={results}"]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    attack = run_child(cmd)
    if attack.result.returncode != 0:
        failed = attack.result
        raise RuntimeError(f"vegeta attack failed ({failed.returncode}): {failed.stderr.strip()}")
    encoded = subprocess.run(
        [str(vegeta), "encode", "-to", "csv", str(results)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return encoded, attack


@dataclass(frozen=True)
class Bracket:
    """What a search knows of one bound: the highest rate that met it (0 when none did) and
    the lowest rate above that which missed it (inf when none did)."""

    bound_s: float
    met: float
    missed: float

    def resolved(self, resolution: float) -> bool:
        """The gap is within ``resolution`` of the missed rate, or 1 req/s."""
        return self.missed - self.met <= max(1.0, resolution * self.missed)


def bracket(results: Iterable[AttackResult], bound_s: float) -> Bracket:
    """The bound's bracket from every attack so far, whatever bound it was aimed at."""
    met, missed = rate_bracket((r.rate, r.meets(bound_s)) for r in results)
    return Bracket(bound_s, met, missed)


def next_rate(
    results: list[AttackResult],
    bounds_s: Iterable[float],
    start_rate: float,
    *,
    growth: float,
    resolution: float,
) -> float | None:
    """The next rate to attack, or None when every bound's bracket is resolved.

    The tightest bound first: its attacks lie below the looser bounds' limits, so they raise
    those brackets' lower ends for free. A bound nothing has missed yet grows by ``growth``
    from its highest met rate, one nothing has met falls by it from its lowest missed rate
    (halving from a start near the limit would throw most of the way away); otherwise its
    bracket is bisected.
    """
    if not results:
        return max(1.0, float(round(start_rate)))
    for bound_s in sorted(bounds_s):
        b = bracket(results, bound_s)
        if math.isinf(b.missed):
            return max(b.met + 1, float(round(b.met * growth)))
        if b.resolved(resolution):
            continue
        lower = float(round(b.missed / growth))
        if b.met == 0 and 1 <= lower < b.missed:
            return lower
        mid = float(round((b.met + b.missed) / 2))
        if b.met < mid < b.missed:
            return mid
    return None


def find_rates(
    url: str,
    body: bytes,
    bounds_s: Iterable[float],
    start_rate: float = 10.0,
    duration_s: float = 10.0,
    max_steps: int = 10,
    cpus: str | None = None,
    *,
    timeout_s: float = 10.0,
    growth: float = 2.0,
    resolution: float = 0.05,
    pause_s: float = 1.0,
    attack_fn: Callable[..., AttackResult] | None = None,
) -> tuple[dict[float, Bracket], list[AttackResult]]:
    """For each p99 bound, the highest rate (integer requests/s) that met it with every answer
    2xx, from one series of attacks (:func:`next_rate` picks each), until every bracket is
    within ``resolution`` (relative) or 1 req/s, or ``max_steps`` attacks were made.

    Returns ({bound: its bracket}, every attack in the order run); a bracket's ``met`` is the
    rate found (0.0 when none met the bound) and ``missed`` the search's upper end. vegeta
    waits for the last answers, so the server's queue is empty when an attack returns;
    ``pause_s`` lets its sockets settle before the next one.
    """
    run = attack_fn or attack
    bounds = sorted(set(bounds_s))
    results: list[AttackResult] = []
    while len(results) < max_steps:
        rate = next_rate(results, bounds, start_rate, growth=growth, resolution=resolution)
        if rate is None:
            break
        if results and pause_s > 0:
            time.sleep(pause_s)
        results.append(run(url, body, rate, duration_s, timeout_s=timeout_s, cpus=cpus))
    return {b: bracket(results, b) for b in bounds}, results


def openloop_row(service: str, payload: str, result: AttackResult) -> dict:
    """One row of openloop.csv (columns OPENLOOP_COLUMNS); which bounds it met is the
    analysis's to say (``clean`` and ``p99_s`` against each bound)."""
    return {
        "service": service,
        "payload": payload,
        "rate": result.rate,
        "duration_s": result.duration_s,
        "requests": result.requests,
        "success": result.success,
        "throughput": result.throughput,
        "p50_s": result.p50_s,
        "p90_s": result.p90_s,
        "p99_s": result.p99_s,
        "max_s": result.max_s,
        "clean": result.clean,
        "send_lag_p99_s": result.send_lag_p99_s,
        "loadgen_cpu_s": result.loadgen_cpu_s,
        "loadgen_wall_s": result.wall_s,
    }


def openloop_rows(service: str, payload: str, results: Iterable[AttackResult]) -> list[dict]:
    return [openloop_row(service, payload, r) for r in results]
