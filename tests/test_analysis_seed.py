"""The seed's view of a synthetic run: its table, per-service differences, its published ratios."""

from __future__ import annotations

import pandas as pd
import pytest
from rundata import PROJECT_SERVICES, make_run_dir

from servebench.analysis import seed, tables
from servebench.rundir import reader

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    return reader.load_run(
        make_run_dir(
            tmp_path_factory.mktemp("runs"),
            n=120,
            services=PROJECT_SERVICES,
            payloads=["seed", "short"],
            concurrencies=[1, 50],
        )
    )


@pytest.fixture(scope="module")
def summary(run: reader.Run) -> pd.DataFrame:
    return tables.build_summary(run, write=False)


def test_seed_views(run: reader.Run, summary: pd.DataFrame) -> None:
    table = seed.seed_table(summary, run.facts)
    assert list(table.index) == list(seed.SEED_ROWS)
    assert "Python" in table.columns and "Rust native release" in table.columns
    assert any(c.startswith("Difference %") for c in table.columns)
    diffs = seed.difference_table(summary, run.facts)
    assert list(diffs.columns) == list(summary["label"].iloc[1:])
    comp = seed.seed_comparison(summary, run.facts)
    pub = seed.published()
    assert comp.loc["Requests/sec", "seed ratio Rust Release ÷ Python"] == pytest.approx(
        pub.loc["Requests/sec", "Rust Release"] / pub.loc["Requests/sec", "Python"]
    )
    s = summary.set_index("service")
    assert comp.loc["Total", "ours Rust Release (PyO3) ÷ Python"] == pytest.approx(
        s.loc["rust-ffi-release", "total_s"] / s.loc["python", "total_s"]
    )


def test_seed_difference_is_baseline_against_best_of_the_other_language(
    run: reader.Run, summary: pd.DataFrame
) -> None:
    batched = set(run.facts.index[run.facts["batching"]])
    assert batched == {"python-batched", "rust-native-batched"}
    rivals = summary.loc[(summary["service"] != "python") & ~summary["service"].isin(batched)]
    best = rivals.sort_values("rps").iloc[-1]
    assert seed.seed_pair(summary, run.facts) == ("python", best["service"])
    table = seed.seed_table(summary, run.facts)
    assert f"Difference % ({best['label']} vs Python)" in table.columns
    # The seed answered one request at a time: batched services are not in its table.
    labels = set(run.facts.loc[list(batched), "label"])
    assert not labels & set(table.columns)
    # A service of the baseline's own language never takes the seed's Difference column.
    facts = run.facts.copy()
    facts["language"] = "python"
    assert seed.seed_pair(summary, facts) is None
    assert not any(c.startswith("Difference") for c in seed.seed_table(summary, facts).columns)


def test_published_table_is_the_seed_readme() -> None:
    pub = seed.published()
    assert list(pub.index) == list(seed.SEED_ROWS)
    assert list(pub.columns) == ["Python", "Rust Debug", "Rust Release", "Difference"]
    assert pub.loc["Requests/sec", "Python"] == pytest.approx(50.9929)
