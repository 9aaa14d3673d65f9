"""The load generator's headroom (loadtests.csv and openloop.csv `loadgen_cpu_s` /
`loadgen_wall_s`), on a synthetic run whose shares are recomputed here from the raw files."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from rundata import make_run_dir, make_variant_run, quiet_load

from servebench.analysis import stability

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_variant_run(tmp_path_factory.mktemp("runs"), mixed=[50])


def test_each_point_gets_its_busiest_burst_and_the_bursts_past_half(run_dir: Path) -> None:
    table = stability.loadgen_headroom(quiet_load(run_dir))
    raw = pd.read_csv(run_dir / "loadtests.csv")  # every burst, the control's and rungs' too
    raw["share"] = raw["loadgen_cpu_s"] / raw["loadgen_wall_s"]
    closed = table[table["phase"] == "closed loop"].set_index(["payload", "concurrency"])
    assert len(closed) == len(raw.groupby(["payload", "concurrency"]))
    for (payload, c), g in raw.groupby(["payload", "concurrency"]):
        row = closed.loc[(payload, c)]
        assert row["bursts"] == len(g)
        assert row["busiest_share"] == pytest.approx(g["share"].max())
        assert row["over_half"] == int((g["share"] > 0.5).sum())
    assert closed["over_half"].sum() > 0, "the synthetic shares reach 85 %"
    opened = pd.read_csv(run_dir / "openloop.csv")
    services = pd.read_csv(run_dir / "services.csv").set_index("service")
    opened = opened[~opened["service"].map(services["control"]).astype(bool)]  # the reader's
    (row,) = table[table["phase"] == "open loop"].itertuples(index=False)
    assert row.bursts == len(opened) and math.isnan(row.concurrency)
    assert row.busiest_share == pytest.approx(
        (opened["loadgen_cpu_s"] / opened["loadgen_wall_s"]).max()
    )


def test_the_sentence_names_the_busiest_burst_and_counts_the_busy_ones(run_dir: Path) -> None:
    table = stability.loadgen_headroom(quiet_load(run_dir))
    sentence = stability.headroom_sentence(table)
    top = table.loc[table["busiest_share"].idxmax()]
    assert f"used {top['busiest_share']:.0%} of its CPU ({top['busiest']}," in sentence
    assert f"{int(table['over_half'].sum())} of {int(table['bursts'].sum()):,} bursts" in sentence
    calm = table.assign(busiest_share=0.3, over_half=0)
    assert "kept up" in stability.headroom_sentence(calm)


def test_a_run_without_the_columns_says_so(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path / "runs", n=60, concurrencies=[1, 50])
    loadtests = pd.read_csv(run_dir / "loadtests.csv")
    loadtests.drop(columns=["loadgen_cpu_s", "loadgen_wall_s"]).to_csv(
        run_dir / "loadtests.csv", index=False
    )
    openloop = run_dir / "openloop.csv"
    if openloop.exists():
        opened = pd.read_csv(openloop)
        opened.drop(columns=["loadgen_cpu_s", "loadgen_wall_s"]).to_csv(openloop, index=False)
    table = stability.loadgen_headroom(quiet_load(run_dir))
    assert table.empty and list(table.columns) == stability.HEADROOM_COLUMNS
    assert stability.headroom_sentence(table) == "The run did not record the load generator's CPU."


def test_the_report_shows_the_table_in_words(run_dir: Path) -> None:
    table = stability.loadgen_headroom(quiet_load(run_dir))
    view = stability.headroom_shown(table)
    assert len(view) == len(table) and not any("_" in c for c in view.columns)
    assert "–" in set(view["clients"])  # the open loop has no concurrency
