"""The bill and the decision table (analysis/cost.py, analysis/decision.py) on a synthetic run,
every row recomputed here from its raw files and its recorded price."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pandas as pd
import pytest
from rundata import data_md_columns, make_variant_run, quiet_load

from servebench.analysis import cost, decision, tables
from servebench.rundir import facts
from servebench.rundir.reader import Run

pytestmark = pytest.mark.unit

C7A = cost.Price("AWS c7a.large", usd_per_hour=0.10264, cores=2, memory_gib=4)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return quiet_load(make_variant_run(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def summary(run: Run) -> pd.DataFrame:
    return tables.build_summary(run)


@pytest.fixture(scope="module")
def rates(run: Run) -> pd.DataFrame:
    return decision.rates(run, tables.per_config(run), write=True)


def test_the_arithmetic_of_a_core_hour() -> None:
    assert C7A.usd_per_core_hour == pytest.approx(0.05132)
    assert C7A.memory_mb_per_core == pytest.approx(2048)
    # 5 ms of CPU a request: 1.389 core-hours a million, $0.0713 at $0.05132 a core-hour.
    assert cost.core_hours_per_million(0.005) == pytest.approx(1e6 * 0.005 / 3600)
    assert cost.usd_per_million(0.005, C7A) == pytest.approx(0.005 * 1e6 / 3600 * 0.05132)
    # A core kept for 200 req/s costs what a saturated one does at 5 ms a request.
    assert cost.provisioned_core_seconds(200, 1) == pytest.approx(0.005)
    assert cost.provisioned_core_seconds(200, 2) == pytest.approx(0.01)
    assert math.isnan(cost.provisioned_core_seconds(0, 1))
    assert math.isnan(cost.provisioned_core_seconds(math.nan, 1))
    assert "$0.05132" in C7A.describe() or "$0.0513" in C7A.describe()


def test_the_price_comes_from_the_run_or_not_at_all(run: Run) -> None:
    recorded = cost.price(run.parameters)
    assert recorded == cost.Price("a synthetic instance", 0.1, 2, 4.0)
    assert cost.price({}) is None
    assert cost.price({**run.parameters, "price_cores": 0}) is None
    assert cost.price({**run.parameters, "price_usd_per_hour": "free"}) is None


def test_cost_rows_are_recomputed_from_the_summary(run: Run, summary: pd.DataFrame) -> None:
    table = cost.cost_table(run, summary, write=True)
    on_disk = pd.read_csv(run.path / "cost.csv")
    assert list(on_disk.columns) == data_md_columns("cost.csv")
    assert len(table) == len(summary)
    usd = 0.1 / 2  # the synthetic run's price: $0.1 an hour for 2 cores
    for r, s in zip(table.itertuples(), summary.itertuples(), strict=True):
        assert (r.service, r.variant) == (s.service, s.variant)
        assert r.usd_per_million == pytest.approx(s.cpu_s_per_req * 1e6 / 3600 * usd)
        assert r.memory_share == pytest.approx(s.peak_rss_mb / run.server_cores / 2048)


def test_a_run_without_a_price_has_the_header_only(run: Run, summary: pd.DataFrame) -> None:
    parameters = {k: v for k, v in run.parameters.items() if not k.startswith("price")}
    unpriced = dataclasses.replace(run, metadata={**run.metadata, "parameters": parameters})
    assert list(cost.cost_table(unpriced, summary).columns) == cost.COLUMNS
    assert cost.cost_table(unpriced, summary).empty
    assert decision.rates(unpriced, tables.per_config(run))["usd_per_million"].isna().all()


def test_every_decision_row_is_recomputed_from_the_attacks(run: Run, rates: pd.DataFrame) -> None:
    assert list(pd.read_csv(run.path / "decision.csv").columns) == data_md_columns("decision.csv")
    attacks = pd.read_csv(run.path / "openloop.csv")
    per_config = pd.read_csv(run.path / "per_config.csv")
    seed = per_config[(per_config["payload"] == "seed") & (per_config["concurrency"] == 50)]
    units = run.units_in_order(run.openloop)  # as the reader keeps them
    assert sorted(rates["bound_ms"].unique()) == [50, 100, 250]
    assert list(zip(rates["service"], rates["variant"], strict=True)) == units * 3
    for r in rates.itertuples():
        mine = attacks[(attacks["service"] == r.service) & (attacks["variant"] == r.variant)]
        met = mine[mine["clean"] & (mine["p99_s"] <= r.bound_ms / 1e3)]
        assert same(r.rate, met["rate"].max())
        top = r.rate if len(met) else 0
        above = mine[(mine["rate"] > top) & ~mine["rate"].isin(met["rate"])]
        assert same(r.missed_rate, above["rate"].min())
        below = mine[(mine["rate"] < top) & ~mine["rate"].isin(met["rate"])]
        assert r.missed_below == len(below)
        assert r.attacks == len(mine)
        closed = seed[(seed["service"] == r.service) & (seed["variant"] == r.variant)]
        assert r.closed_rps == pytest.approx(float(closed["rps"].iloc[0]))
        assert same(r.rate_vs_closed, r.rate / r.closed_rps)
        # one server core kept for the rate, at $0.05 a core-hour
        assert same(r.usd_per_million, run.server_cores / r.rate * 1e6 / 3600 * 0.05)
    assert rates["rate"].notna().sum() > len(rates) / 2  # the synthetic units meet most bounds


def same(a: float, b: float) -> bool:
    """Equal to rounding, or both NaN (a bound the unit never met)."""
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def test_the_fastest_under_each_bound(run: Run, rates: pd.DataFrame) -> None:
    best = decision.fastest(rates)
    assert list(best["bound_ms"]) == [50, 100, 250]
    for r in best.itertuples():
        under = rates[rates["bound_ms"] == r.bound_ms]
        assert r.rate == under["rate"].max()
        assert r.usd_per_million == under["usd_per_million"].min()  # fastest is cheapest
    # a looser bound is met at a rate at least as high
    assert list(best["rate"]) == sorted(best["rate"])
    text = decision.sentence(run, rates)
    assert text is not None
    for r in best.itertuples():
        assert f"ms: {run.unit_label(r.service, r.variant)}" in text
        assert f"{r.rate:.0f} req/s" in text
    shown = decision.shown(run, best)
    assert list(shown["p99 bound (ms)"]) == ["50", "100", "250"]


def test_batched_dynamic_int8_is_flagged(run: Run, rates: pd.DataFrame) -> None:
    variants = pd.read_csv(run.path / "variants.csv").set_index("variant")["batch_invariant"]
    for r in rates.itertuples():
        batched = facts.truth(run.fact(r.service, "batching"))
        moves = batched and not facts.truth(variants[r.variant])
        assert r.batch_dependent == moves
    assert rates["batch_dependent"].any() and not rates["batch_dependent"].all()


def test_a_bound_no_unit_met_is_named(run: Run, rates: pd.DataFrame) -> None:
    tight = rates.assign(
        rate=rates["rate"].where(rates["bound_ms"] != 50),
        fastest=rates["fastest"] & (rates["bound_ms"] != 50),
    )
    text = decision.sentence(run, tight)
    assert text is not None and "No unit met p99 ≤ 50 ms" in text


def test_an_old_run_reads_its_one_bound(run: Run) -> None:
    """openloop.csv from before issue 20: meets_bound for one bound instead of clean."""
    old = pd.DataFrame(
        {"rate": [10, 20, 40, 30], "p99_s": [0.01, 0.02, 0.5, 0.09],
         "meets_bound": ["True", "True", "False", True]}
    )  # fmt: skip
    assert decision.bracket(old, 0.1) == (30.0, 40.0, 0.09, 0)
    assert decision.bracket(old, 0.05)[:2] == (20.0, 30.0)
    noisy = old.assign(meets_bound=[True, False, True, True])  # 20 missed, 30 met
    assert decision.bracket(noisy, 0.1) == (30.0, 40.0, 0.09, 1)
    assert math.isnan(decision.bracket(old.assign(meets_bound=False), 0.1)[0])


def test_no_attacks_no_rows(tmp_path: Path) -> None:
    bare = quiet_load(make_variant_run(tmp_path, optional=("services", "variants")))
    table = decision.rates(bare, tables.per_config(bare))
    assert table.empty and list(table.columns) == decision.COLUMNS
    assert decision.sentence(bare, table) is None


def test_the_short_answer_names_each_bounds_fastest(run: Run, summary: pd.DataFrame) -> None:
    from servebench.analysis import narrative

    line = decision.bullet(run, decision.rates(run, tables.per_config(run)))
    assert line is not None and f"- {line}" in narrative.answer(run, summary).splitlines()
    for r in decision.fastest(decision.rates(run, tables.per_config(run))).itertuples():
        assert f"≤ {r.bound_ms:g} ms: {run.unit_label(r.service, r.variant)}" in line
