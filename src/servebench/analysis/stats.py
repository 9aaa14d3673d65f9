"""Pure statistics of the study: percentiles, hey's view of a run, rounds, ceilings.

Every function here takes plain numbers, arrays or data frames and returns plain
values; nothing reads or writes files and nothing here knows a service by name.
Conventions used throughout:

* Latencies are in seconds unless a name says ``_us`` (microseconds) or ``_ms``.
* Percentiles: :func:`percentile` is the project's one convention (every phase that
  reports a percentile uses it).
* "Difference" follows the seed study: ``(value - baseline) / baseline * 100``, so a
  lower Total is negative and a higher Requests/sec positive (the seed printed -36 % Total
  and +57 % Requests/sec for Rust against Python).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from servebench import loadrun
from servebench.rundir.rounds import DEFAULT_UNSTABLE_PCT

#: The percentiles the study reports, keyed by the column suffix used in the CSV files.
PERCENTILES: dict[str, float] = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}

#: Fixed seed of the bootstrap, so a report regenerated from the same data is identical.
BOOTSTRAP_SEED = 20240917

#: hey draws its response-time histogram with 10 equal-width steps from fastest to slowest,
#: i.e. 11 bucket marks.
HEY_BUCKETS = 10


# --------------------------------------------------------------------------- percentiles


def percentile(values: ArrayLike, q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``: THE percentile of the project.

    *Linear interpolation between closest ranks* (Hyndman & Fan type 7, numpy's default
    ``method="linear"``): for ``n`` sorted values ``x[0..n-1]`` the ``q``-th percentile
    sits at rank ``h = (n - 1) * q / 100`` and is
    ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. p0 is the fastest
    and p100 the slowest value; with 1,000 requests p99.9 lies between the two slowest.
    Chosen over nearest-rank because it moves smoothly as a value changes, so two runs'
    p99 differ by their data, not by which sample a rank rounding happened to pick.

    NaNs are ignored; an empty input gives NaN; ``q`` outside 0..100 raises ValueError.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    x = np.asarray(values, dtype=float).ravel()
    x = np.sort(x[~np.isnan(x)])
    n = x.size
    if n == 0:
        return math.nan
    h = (n - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return float(x[lo] + (h - lo) * (x[hi] - x[lo]))


def percentiles(values: ArrayLike, qs: dict[str, float] | None = None) -> dict[str, float]:
    """Several percentiles at once: by default ``{"p50", "p90", "p99", "p999"}``."""
    qs = PERCENTILES if qs is None else qs
    return {name: percentile(values, q) for name, q in qs.items()}


# --------------------------------------------------------------------------- hey's view


def hey_histogram(latencies_s: ArrayLike, buckets: int = HEY_BUCKETS) -> pd.DataFrame:
    """hey's response-time histogram: ``buckets + 1`` marks from fastest to slowest.

    The one hey-style histogram of the project (the figures and hey's text summary both
    use it). Mirrors hey's ``report.histogram``: marks are ``fastest + i * (slowest -
    fastest) / buckets`` for ``i < buckets`` and the last mark is ``slowest``; every
    latency is counted in the first mark that is ``>=`` it. So the first row counts the
    requests equal to the fastest one (usually 1), and row ``i`` those in
    ``(mark[i-1], mark[i]]``.

    Returns one row per mark, in ascending order: ``mark_s`` (the mark, seconds) and
    ``count`` (answers counted at it, int). Empty input (or only NaNs): an empty frame
    with the same two columns.
    """
    x = np.asarray(latencies_s, dtype=float).ravel()
    x = np.sort(x[~np.isnan(x)])
    if x.size == 0:
        return pd.DataFrame({"mark_s": pd.Series(dtype=float), "count": pd.Series(dtype=int)})
    fastest, slowest = float(x[0]), float(x[-1])
    step = (slowest - fastest) / buckets
    marks = np.array([fastest + step * i for i in range(buckets)] + [slowest])
    index = np.searchsorted(marks, x, side="left")
    counts = np.bincount(np.minimum(index, buckets), minlength=buckets + 1)
    return pd.DataFrame({"mark_s": marks, "count": counts.astype(int)})


@dataclass(frozen=True)
class HeySummary:
    """The numbers hey prints for one run (and the seed's table shows), plus error counts.

    ``responses`` are the rows hey wrote (answers of any status; hey leaves requests that
    failed at the connection level out of its CSV); ``errors`` are non-2xx answers plus
    requests that never got an answer (``n_expected - responses``, when ``n_expected`` is
    known). ``rps`` is hey's Requests/sec: responses / Total.
    """

    total_s: float
    slowest_s: float
    fastest_s: float
    average_s: float
    rps: float
    responses: int
    errors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hey_summary(
    requests: pd.DataFrame,
    total_s: float | None = None,
    n_expected: int | None = None,
) -> HeySummary:
    """hey's summary of one run from its per-request rows (``requests.csv.gz`` columns).

    ``total_s`` is hey's Total (wall time of the run, ``loadtests.csv``'s ``total_s``). When
    it is not given it is reconstructed as ``max(offset_s + response_time_s)``, the end of the
    last answer measured from the start of the run.
    """
    lat = requests["response_time_s"].to_numpy(dtype=float)
    responses = int(lat.size)
    if total_s is None or (isinstance(total_s, float) and math.isnan(total_s)):
        total_s = loadrun.total_seconds(requests)
    known = n_expected is not None and not pd.isna(n_expected)
    errors = loadrun.error_count(requests["status_code"], int(n_expected) if known else None)
    if responses:
        slowest, fastest, average = float(lat.max()), float(lat.min()), float(lat.mean())
    else:
        slowest = fastest = average = math.nan
    rps = responses / total_s if total_s and total_s > 0 else math.nan
    return HeySummary(
        total_s=float(total_s),
        slowest_s=slowest,
        fastest_s=fastest,
        average_s=average,
        rps=float(rps),
        responses=responses,
        errors=errors,
    )


# --------------------------------------------------------------------------- rounds


def spread_pct(values: ArrayLike) -> float:
    """``(max - min) / median * 100`` of the rounds (0 for one round, NaN if empty)."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan
    med = float(np.median(x))
    if med == 0:
        return math.nan
    return float((x.max() - x.min()) / abs(med) * 100.0)


def is_unstable(values: ArrayLike, threshold_pct: float = DEFAULT_UNSTABLE_PCT) -> bool:
    """True when the rounds disagree by more than ``threshold_pct`` (see :func:`spread_pct`)."""
    s = spread_pct(values)
    return bool(not math.isnan(s) and s > threshold_pct)


def bootstrap_median_ci(
    values: ArrayLike,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the median (resampling with replacement).

    Deterministic: the generator is seeded with ``seed``. With very few rounds (3 is
    typical here) the interval can only take values among the rounds, so read it as "the
    range the median could plausibly have landed in", not as a precise interval.
    """
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (math.nan, math.nan)
    if x.size == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    medians = np.median(x[idx], axis=1)
    alpha = (1.0 - confidence) / 2.0
    return (
        percentile(medians, 100.0 * alpha),
        percentile(medians, 100.0 * (1.0 - alpha)),
    )


@dataclass(frozen=True)
class RoundStats:
    """Summary of one metric across the rounds of a configuration."""

    median: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    spread_pct: float
    unstable: bool
    rounds: int


def aggregate_rounds(
    values: ArrayLike,
    threshold_pct: float = DEFAULT_UNSTABLE_PCT,
    seed: int = BOOTSTRAP_SEED,
    n_boot: int = 10_000,
) -> RoundStats:
    """Median, min, max, 95 % bootstrap interval of the median, spread and unstable flag."""
    x = np.asarray(values, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        nan = math.nan
        return RoundStats(nan, nan, nan, nan, nan, nan, False, 0)
    lo, hi = bootstrap_median_ci(x, n_boot=n_boot, seed=seed)
    return RoundStats(
        median=float(np.median(x)),
        min=float(x.min()),
        max=float(x.max()),
        ci_low=lo,
        ci_high=hi,
        spread_pct=spread_pct(x),
        unstable=is_unstable(x, threshold_pct),
        rounds=int(x.size),
    )


def difference_pct(value: float, baseline: float) -> float:
    """The seed's Difference: ``(value - baseline) / baseline * 100`` (NaN if baseline is 0)."""
    if baseline is None or pd.isna(baseline) or baseline == 0 or value is None or pd.isna(value):
        return math.nan
    return float((value - baseline) / baseline * 100.0)


def ratio(value: float, baseline: float) -> float:
    """``value / baseline`` (NaN when either is missing or the baseline is 0)."""
    if baseline is None or pd.isna(baseline) or baseline == 0 or value is None or pd.isna(value):
        return math.nan
    return float(value / baseline)


# --------------------------------------------------------------------------- ceilings


def ceiling_rps(total_us_median: float, server_cores: int) -> float:
    """Upper bound on throughput from the in-process loop, in requests/s.

    ``ceiling_rps = 1e6 / median(total_us) * server_cores`` where ``total_us`` is the
    in-process time of one request (tokenization + inference, no HTTP) measured by
    ``ceiling.csv`` on one core, and ``server_cores`` is the number of CPUs in the
    server's pinning (``metadata.json`` → ``pinning.server_cpus``). It assumes the
    service keeps every one of its pinned CPUs busy with independent requests and has zero
    HTTP cost, so it is optimistic: a single-worker single-thread server can at best reach
    ``1 / server_cores`` of it.
    """
    if total_us_median is None or pd.isna(total_us_median) or total_us_median <= 0:
        return math.nan
    return float(1e6 / total_us_median * max(1, int(server_cores)))


def efficiency(rps: float, ceiling: float) -> float:
    """Achieved fraction of the ceiling: ``rps / ceiling_rps``."""
    return ratio(rps, ceiling)


def overhead_ms(latency_c1_median_s: float, inprocess_total_us_median: float) -> float:
    """Cost of serving one request over HTTP beyond the in-process work, in milliseconds.

    ``(median latency at concurrency 1 [s] * 1e3) - (in-process median total_us / 1e3)``.
    It includes the HTTP stack, JSON, the loopback network, the client and (for services
    that call Python from Rust) the FFI crossing. Negative values mean the two were
    measured under different conditions (noise), not that HTTP is free.
    """
    if pd.isna(latency_c1_median_s) or pd.isna(inprocess_total_us_median):
        return math.nan
    return float(latency_c1_median_s * 1e3 - inprocess_total_us_median / 1e3)


# --------------------------------------------------------------------------- open loop


def rate_bracket(attacks: Iterable[tuple[float, bool]]) -> tuple[float, float]:
    """The open-loop bracket of one bound from (rate, met the bound) pairs: the highest rate
    that met it (0.0 when none did) and the lowest rate above that which missed it (inf when
    none did); the limit lies between them. The search (measure/vegeta.py) and the decision
    table (analysis/decision.py) read attacks by this one rule."""
    done = list(attacks)
    met = max((rate for rate, ok in done if ok), default=0.0)
    missed = min((rate for rate, ok in done if rate > met and not ok), default=math.inf)
    return float(met), float(missed)


def as_bool(values: pd.Series) -> pd.Series:
    """Booleans from a CSV column that may hold True/False, 'true'/'false', 1/0."""
    if values.dtype == bool:
        return values
    mapped = values.map(lambda v: str(v).strip().lower() in {"true", "1", "yes", "y", "t", "1.0"})
    return mapped.astype(bool)


# --------------------------------------------------------------------------- stages


STAGE_COMPONENTS: tuple[str, ...] = (
    "network_http_us",
    "handler_overhead_us",
    "tokenization_us",
    "inference_us",
)


def decompose_stages(
    stages: pd.DataFrame, by: Sequence[str] = ("service", "payload")
) -> pd.DataFrame:
    """Split the concurrency-1 round trip into four parts from the *medians* of stages.csv.

    For each group: take the medians of ``client_us``, ``handler_us``, ``tokenization_us``
    and ``inference_us``; then ``network_http_us = client - handler`` (client, loopback,
    HTTP parsing outside the handler's clock), ``handler_overhead_us = handler -
    tokenization - inference`` (JSON, routing, FFI, softmax), and the two stages. The four
    parts add up to the median ``client_us``. A negative part (possible, since medians do
    not add) is kept as is in the frame; plots clip it at 0.
    """
    cols = ["client_us", "handler_us", "tokenization_us", "inference_us"]
    med = stages.groupby(list(by), sort=False)[cols].median().reset_index()
    med["network_http_us"] = med["client_us"] - med["handler_us"]
    med["handler_overhead_us"] = med["handler_us"] - med["tokenization_us"] - med["inference_us"]
    med["requests"] = stages.groupby(list(by), sort=False).size().to_numpy()
    return med[[*by, "requests", "client_us", "handler_us", *STAGE_COMPONENTS]]
