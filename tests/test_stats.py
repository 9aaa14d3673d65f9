"""servebench.analysis.stats (and the seed table's arithmetic) on inputs whose answers
follow from the definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from servebench.analysis import seed, stats
from servebench.rundir import reader

pytestmark = pytest.mark.unit

# --------------------------------------------------------------------------- percentiles


@pytest.mark.parametrize("n", [1, 2, 3, 10, 999, 1000, 1001])
def test_percentiles_match_numpy_linear(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.lognormal(-3, 0.7, n)
    for q in (0, 1, 50, 90, 99, 99.9, 100):
        assert stats.percentile(x, q) == pytest.approx(
            np.percentile(x, q, method="linear"), rel=1e-12, abs=0
        )
    got = stats.percentiles(x)
    assert list(got) == ["p50", "p90", "p99", "p999"]
    assert got["p999"] == pytest.approx(np.percentile(x, 99.9))


def test_percentile_interpolates_between_ranks() -> None:
    x = [4.0, 1.0, 3.0, 2.0]  # sorted 1 2 3 4: p50 at rank 1.5
    assert stats.percentile(x, 50) == pytest.approx(2.5)
    assert stats.percentile(x, 0) == 1.0
    assert stats.percentile(x, 100) == 4.0


def test_percentile_ignores_nan_and_handles_empty() -> None:
    assert stats.percentile([1.0, np.nan, 3.0], 50) == pytest.approx(2.0)
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


# --------------------------------------------------------------------------- hey


def hey_histogram_reference(lats: list[float], bc: int = 10) -> tuple[list[float], list[int]]:
    """hey's report.histogram loop, transcribed literally from its Go source."""
    lats = sorted(lats)
    fastest, slowest = lats[0], lats[-1]
    bs = (slowest - fastest) / bc
    buckets = [fastest + bs * i for i in range(bc)] + [slowest]
    counts = [0] * (bc + 1)
    bi = 0
    i = 0
    while i < len(lats):
        if lats[i] <= buckets[bi]:
            counts[bi] += 1
            i += 1
        elif bi < len(buckets) - 1:
            bi += 1
    return buckets, counts


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hey_histogram_matches_hey_algorithm(seed: int) -> None:
    lats = list(np.random.default_rng(seed).gamma(2.0, 0.1, 1000))
    marks, counts = hey_histogram_reference(lats)
    got = stats.hey_histogram(lats)
    assert len(got) == 11
    assert got["mark_s"].tolist() == pytest.approx(marks)
    assert got["count"].tolist() == counts
    assert got["count"].sum() == 1000
    assert got["count"].iloc[0] >= 1  # the fastest request sits alone at the first mark


def test_hey_histogram_constant_latencies() -> None:
    got = stats.hey_histogram([0.2] * 5)
    assert got["count"].iloc[0] == 5 and got["count"].sum() == 5


def hey_csv(times: list[float], offsets: list[float], status: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"response_time_s": times, "offset_s": offsets, "status_code": status})


def test_hey_summary_on_known_requests() -> None:
    times = [0.1 * (i + 1) for i in range(10)]  # 0.1 .. 1.0 s
    offsets = [0.1 * i for i in range(10)]  # last ends at 0.9 + 1.0 = 1.9 s
    run = stats.hey_summary(hey_csv(times, offsets, [200] * 10), total_s=2.0)
    assert run.total_s == 2.0
    assert run.slowest_s == pytest.approx(1.0)
    assert run.fastest_s == pytest.approx(0.1)
    assert run.average_s == pytest.approx(0.55)
    assert run.rps == pytest.approx(5.0)  # 10 answers / 2 s
    assert run.errors == 0 and run.responses == 10
    rebuilt = stats.hey_summary(hey_csv(times, offsets, [200] * 10))
    assert rebuilt.total_s == pytest.approx(1.9)


def test_hey_summary_counts_non_2xx_and_lost_requests() -> None:
    run = stats.hey_summary(
        hey_csv([0.1, 0.2, 0.3], [0, 0, 0], [200, 503, 404]), total_s=1.0, n_expected=5
    )
    assert run.errors == 2 + 2  # two non-2xx answers, two requests never answered
    assert run.rps == pytest.approx(3.0)  # hey counts every answer in Requests/sec


def facts(services: list[str]) -> pd.DataFrame:
    """The registry's facts of these services (baseline, language) as a run would record."""
    return reader.service_facts(services)[0]


def test_seed_table_arithmetic_on_known_runs() -> None:
    """Two services, 10 requests each: Difference % follows (value - base) / base * 100."""
    py = stats.hey_summary(hey_csv([0.2] * 5 + [0.4] * 5, [0] * 10, [200] * 10), total_s=4.0)
    rs = stats.hey_summary(hey_csv([0.1] * 5 + [0.3] * 5, [0] * 10, [200] * 10), total_s=2.5)
    summary = pd.DataFrame(
        [
            {"service": "python", "variant": "fp32", "label": "Python", **py.as_dict()},
            {"service": "rust-native-release", "variant": "fp32", "label": "Rust", **rs.as_dict()},
        ]
    )
    summary["table_rps"] = summary["rps"]  # one full run each: the seed table's own
    known = facts(["python", "rust-native-release"])
    table = seed.seed_table(summary, known)
    assert list(table.index) == ["Total", "Slowest", "Fastest", "Average", "Requests/sec"]
    assert table.loc["Total", "Python"] == 4.0
    assert table.loc["Average", "Python"] == pytest.approx(0.3)
    assert table.loc["Average", "Rust"] == pytest.approx(0.2)
    assert table.loc["Requests/sec", "Python"] == pytest.approx(2.5)
    assert table.loc["Requests/sec", "Rust"] == pytest.approx(4.0)
    diff = table["Difference % (Rust vs Python)"]
    assert diff["Total"] == pytest.approx(-37.5)  # (2.5 - 4) / 4
    assert diff["Requests/sec"] == pytest.approx(60.0)  # (4 - 2.5) / 2.5
    assert diff["Fastest"] == pytest.approx(-50.0)
    assert seed.difference_table(summary, known).loc["Slowest", "Rust"] == pytest.approx(-25.0)


def test_difference_convention_reproduces_the_seed_table() -> None:
    """Our Difference on the seed's own numbers lands within 1 point of what it printed."""
    pub = seed.published()
    cols = seed.SEED_ROWS
    summary = pd.DataFrame(
        [
            {
                "service": "python",
                "variant": "fp32",
                "label": "Python",
                **{c: pub.loc[r, "Python"] for r, c in cols.items()},
            },
            {
                "service": "rust-ffi-release",
                "variant": "fp32",
                "label": "Rust Release",
                **{c: pub.loc[r, "Rust Release"] for r, c in cols.items()},
            },
        ]
    )
    summary["rps"] = summary["table_rps"]  # the seed measured one run per service
    table = seed.seed_table(summary, facts(["python", "rust-ffi-release"]))
    diff = table["Difference % (Rust Release vs Python)"]
    for row in cols:
        assert diff[row] == pytest.approx(pub.loc[row, "Difference"], abs=1.0)
    assert diff["Total"] < 0 < diff["Requests/sec"]


# --------------------------------------------------------------------------- rounds


def test_bootstrap_interval_contains_median_and_is_deterministic() -> None:
    rng = np.random.default_rng(3)
    for n in (3, 5, 30):
        x = rng.normal(100, 10, n)
        lo, hi = stats.bootstrap_median_ci(x)
        assert lo <= np.median(x) <= hi
        assert (lo, hi) == stats.bootstrap_median_ci(x)
        assert lo >= x.min() and hi <= x.max()
    assert stats.bootstrap_median_ci([7.0]) == (7.0, 7.0)


def test_spread_and_unstable_flag() -> None:
    assert stats.spread_pct([100, 100, 100]) == 0
    assert stats.spread_pct([95, 100, 110]) == pytest.approx(15.0)
    assert not stats.is_unstable([98, 100, 105])  # 7 %
    assert stats.is_unstable([95, 100, 110])  # 15 %
    assert not stats.is_unstable([95, 100, 110], threshold_pct=20)
    agg = stats.aggregate_rounds([95, 100, 110])
    assert (agg.median, agg.min, agg.max, agg.rounds) == (100, 95, 110, 3)
    assert agg.unstable and agg.ci_low <= 100 <= agg.ci_high


def test_difference_and_ratio() -> None:
    assert stats.difference_pct(80, 50) == pytest.approx(60.0)
    assert stats.difference_pct(12.5, 20) == pytest.approx(-37.5)
    assert math.isnan(stats.difference_pct(1, 0))
    assert stats.ratio(80, 50) == pytest.approx(1.6)


# --------------------------------------------------------------------------- ceilings


def test_ceiling_efficiency_overhead() -> None:
    assert stats.ceiling_rps(10_000, 1) == pytest.approx(100.0)  # 10 ms per request, 1 CPU
    assert stats.ceiling_rps(10_000, 2) == pytest.approx(200.0)
    assert stats.efficiency(150, 200) == pytest.approx(0.75)
    assert stats.overhead_ms(0.012, 10_000) == pytest.approx(2.0)  # 12 ms round trip - 10 ms
    assert math.isnan(stats.ceiling_rps(float("nan"), 1))


def test_decompose_stages_adds_up_to_median_client_time() -> None:
    rng = np.random.default_rng(5)
    n = 101
    tok, inf = rng.uniform(100, 200, n), rng.uniform(1000, 2000, n)
    handler = tok + inf + rng.uniform(10, 50, n)
    client = handler + rng.uniform(200, 400, n)
    st = pd.DataFrame(
        {
            "service": "python",
            "payload": "seed",
            "client_us": client,
            "handler_us": handler,
            "tokenization_us": tok,
            "inference_us": inf,
        }
    )
    d = stats.decompose_stages(st).iloc[0]
    parts = sum(d[c] for c in stats.STAGE_COMPONENTS)
    assert parts == pytest.approx(np.median(client))
    assert d["inference_us"] == pytest.approx(np.median(inf))
    assert d["network_http_us"] == pytest.approx(np.median(client) - np.median(handler))
    assert d["requests"] == n
