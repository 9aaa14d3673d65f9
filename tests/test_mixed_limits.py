"""The mixed workload's in-process limits (mixed_limits.csv and the report's view of it), on
synthetic runs whose numbers are recomputed here from replay.csv, per_config.csv's source
(loadtests.csv) and the paired rounds, independently of servebench.analysis.mixed_limits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import data_md_columns, make_run_dir, make_variant_run, quiet_load
from rundata_files import REPLAY_GAIN

from servebench.analysis import mixed_limits, narrative

pytestmark = pytest.mark.unit

LEVELS = [1, 50]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_variant_run(tmp_path_factory.mktemp("runs"), mixed=LEVELS)


@pytest.fixture(scope="module")
def table(run_dir: Path) -> pd.DataFrame:
    return mixed_limits.mixed_limits(quiet_load(run_dir), write=True)


def geomean(values: pd.Series) -> float:
    return float(np.exp(np.mean(np.log(values.to_numpy(float)))))


def per_round(run_dir: Path, service: str, variant: str, c: int, clients: int) -> pd.Series:
    """A replay's items/s per round, from replay.csv."""
    replay = pd.read_csv(run_dir / "replay.csv")
    mine = replay[
        (replay["service"] == service)
        & (replay["variant"] == variant)
        & (replay["concurrency"] == c)
        & (replay["clients"] == clients)
    ]
    sums = mine.groupby("round")[["texts", "total_us"]].sum()
    return sums["texts"] * 1e6 / sums["total_us"]


def test_every_batched_service_variant_and_level_has_its_limits(
    run_dir: Path, table: pd.DataFrame
) -> None:
    replay = pd.read_csv(run_dir / "replay.csv")
    expected = set(zip(replay["service"], replay["variant"], replay["concurrency"], strict=True))
    got = set(zip(table["service"], table["variant"], table["concurrency"], strict=True))
    assert got == expected and len(table) == len(expected)
    assert (run_dir / "mixed_limits.csv").is_file()
    assert list(pd.read_csv(run_dir / "mixed_limits.csv").columns) == mixed_limits.COLUMNS


def test_the_limits_are_the_median_over_rounds_of_each_replays_items_per_s(
    run_dir: Path, table: pd.DataFrame
) -> None:
    for r in table.itertuples(index=False):
        one = per_round(run_dir, r.service, r.variant, r.concurrency, 1)
        many = per_round(run_dir, r.service, r.variant, r.concurrency, r.concurrency)
        assert r.batch1_items_per_s == pytest.approx(one.median())
        assert r.batched_items_per_s == pytest.approx(many.median())


def test_the_batching_gain_is_paired_per_round_with_an_interval(
    run_dir: Path, table: pd.DataFrame
) -> None:
    at50 = table[table["concurrency"] == 50]
    assert len(at50)
    for r in at50.itertuples(index=False):
        one = per_round(run_dir, r.service, r.variant, 50, 1)
        many = per_round(run_dir, r.service, r.variant, 50, 50)
        ratios = (many / one).to_numpy()
        assert r.queue_gain == pytest.approx(geomean(pd.Series(ratios)), rel=1e-9)
        assert r.queue_gain_ci_low < r.queue_gain < r.queue_gain_ci_high
        assert r.queue_gain == pytest.approx(REPLAY_GAIN, rel=0.05)
    # at one client the batched limit is the batch-1 limit: no gain to state
    at1 = table[table["concurrency"] == 1]
    assert len(at1) and at1["queue_gain"].isna().all()
    assert (at1["batch1_items_per_s"] == at1["batched_items_per_s"]).all()


def test_each_service_is_held_against_its_limits_round_by_round(
    run_dir: Path, table: pd.DataFrame
) -> None:
    loadtests = pd.read_csv(run_dir / "loadtests.csv")
    for r in table[table["concurrency"] == 50].itertuples(index=False):
        mine = loadtests[
            (loadtests["service"] == r.service)
            & (loadtests["variant"] == r.variant)
            & (loadtests["payload"] == "mixed")
            & (loadtests["concurrency"] == 50)
        ].set_index("round")["rps"]
        assert r.rps == pytest.approx(mine.median())
        many = per_round(run_dir, r.service, r.variant, 50, 50)
        one = per_round(run_dir, r.service, r.variant, 50, 1)
        rounds = mine.index.intersection(many.index)
        assert r.of_batched_limit == pytest.approx(geomean(mine[rounds] / many[rounds]), rel=1e-9)
        assert r.of_batch1_limit == pytest.approx(geomean(mine[rounds] / one[rounds]), rel=1e-9)
        twin = loadtests[
            (loadtests["service"] == r.twin)
            & (loadtests["variant"] == r.variant)
            & (loadtests["payload"] == "mixed")
            & (loadtests["concurrency"] == 50)
        ].set_index("round")["rps"]
        assert r.twin_rps == pytest.approx(twin.median())
        assert r.twin_of_batch1_limit == pytest.approx(
            geomean(twin[rounds] / one[rounds]), rel=1e-9
        )
        assert not math.isnan(r.of_batched_limit_ci_low)


def test_the_report_shows_the_table_in_words(run_dir: Path, table: pd.DataFrame) -> None:
    view = mixed_limits.shown(quiet_load(run_dir), table)
    assert len(view) == len(table)
    assert not any("_" in str(column) for column in view.columns)
    gains = view["batching gain in process"][np.asarray(table["concurrency"] == 50)]
    assert all("×" in text and "[" in text for text in gains)


def test_a_run_without_replays_has_an_empty_table(tmp_path: Path) -> None:
    run = quiet_load(make_run_dir(tmp_path / "runs", n=60, concurrencies=[1, 50]))
    assert mixed_limits.mixed_limits(run).empty
    assert list(mixed_limits.mixed_limits(run).columns) == mixed_limits.COLUMNS


def test_data_md_documents_the_files() -> None:
    assert data_md_columns("mixed_limits.csv") == mixed_limits.COLUMNS
    assert data_md_columns("replay.csv")[-4:] == ["clients", "iteration", "texts", "total_us"]


def burst(sent: list[float], took: list[float], status: list[int] | None = None) -> pd.DataFrame:
    n = len(sent)
    return pd.DataFrame(
        {
            "service": ["s"] * n, "variant": ["fp32"] * n, "payload": ["mixed"] * n,
            "concurrency": [2] * n, "round": [0] * n, "offset_s": sent,
            "response_time_s": took, "status_code": status or [200] * n,
        }
    )  # fmt: skip


def test_the_steady_rate_counts_the_answers_completed_by_the_last_send() -> None:
    # two clients: sends at 0, 0, 1, 2; answers at 1, 2, 3, 5
    (row,) = mixed_limits.steady_bursts(burst([0, 0, 1, 2], [1, 2, 2, 3])).itertuples()
    assert row.rps == pytest.approx(2 / 2)  # two answers by the last send, at 2 s
    assert row.drain_share == pytest.approx(3 / 5)
    # an error completed in the window does not count
    (row,) = mixed_limits.steady_bursts(
        burst([0, 0, 1, 2], [1, 2, 2, 3], [200, 503, 200, 200])
    ).itertuples()
    assert row.rps == pytest.approx(1 / 2)
    # everything sent at once: no window, the whole burst's rate
    (row,) = mixed_limits.steady_bursts(burst([0, 0, 0], [1, 2, 4])).itertuples()
    assert (row.rps, row.drain_share) == (pytest.approx(3 / 4), pytest.approx(1.0))


def test_the_steady_ratio_to_the_twin_is_paired_per_round(
    run_dir: Path, table: pd.DataFrame
) -> None:
    steady = mixed_limits.steady_bursts(pd.read_csv(run_dir / "requests.csv.gz"))
    by = steady.set_index(["service", "variant", "concurrency", "round"])["rps"].sort_index()
    for r in table[table["concurrency"] == 50].itertuples(index=False):
        mine = by.loc[(r.service, r.variant, 50)]
        theirs = by.loc[(r.twin, r.variant, 50)]
        rounds = mine.index.intersection(theirs.index)
        assert r.steady_vs_twin == pytest.approx(geomean(mine[rounds] / theirs[rounds]), rel=1e-9)
        assert 0 < r.drain_share < 1 and 0 < r.twin_drain_share < 1
        assert r.vs_twin_ci_low < r.vs_twin < r.vs_twin_ci_high


def test_the_short_answer_says_how_close_to_their_limits_the_batched_services_ran(
    run_dir: Path, table: pd.DataFrame
) -> None:
    sentence = narrative.batching_change(quiet_load(run_dir))
    assert sentence is not None
    top = table[table["concurrency"] == max(LEVELS)]
    low, high = top["of_batched_limit"].min(), top["of_batched_limit"].max()
    assert (
        f"({low * 100:.0f}–{high * 100:.0f} % of their own queues replayed in process; " in sentence
    )
    steady = f"{top['steady_vs_twin'].min():.2f}–{top['steady_vs_twin'].max():.2f}×"
    assert f"{steady} their twins without the bursts' drain)" in sentence
