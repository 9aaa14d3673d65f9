"""Model variants in the report's tables: every table keyed by (service, variant)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import SHOWN_SERVICES as SERVICES
from rundata import VARIANT_FILES, data_md_columns, make_variant_run

from servebench.analysis import measures, seed, tables
from servebench.rundir import reader

pytestmark = pytest.mark.unit

VARIANTS = ("fp32", "int8")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_variant_run(tmp_path_factory.mktemp("variants"), n=80, services=SERVICES)


@pytest.fixture(scope="module")
def run(run_dir: Path) -> reader.Run:
    return reader.load_run(run_dir)


@pytest.fixture(scope="module")
def summary(run: reader.Run) -> pd.DataFrame:
    return tables.build_summary(run)


def test_synthetic_files_follow_data_md(run_dir: Path) -> None:
    """What tests/rundata.py writes is what docs/DATA.md documents (the variant included)."""
    for name in (*VARIANT_FILES, "variants.csv"):
        assert list(pd.read_csv(run_dir / name).columns) == data_md_columns(name), name


def test_one_summary_row_per_service_and_variant(run_dir: Path, summary: pd.DataFrame) -> None:
    on_disk = pd.read_csv(run_dir / "summary.csv")
    assert list(on_disk.columns) == data_md_columns("summary.csv")
    expected = [(s, v) for s in SERVICES for v in VARIANTS]
    assert list(zip(on_disk["service"], on_disk["variant"], strict=True)) == expected
    per_config = pd.read_csv(run_dir / "per_config.csv")
    assert list(per_config.columns) == data_md_columns("per_config.csv")
    assert set(per_config["variant"]) == set(VARIANTS)
    assert len(per_config) == len(SERVICES) * len(VARIANTS) * 2 * 2
    filled = [c for c in data_md_columns("summary.csv") if c not in tables.MAY_BE_EMPTY]
    assert summary[filled].notna().all().all(), summary.isna().sum()
    int8 = summary[summary["variant"] == "int8"]
    assert int8[["variant_factor_ci_low", "variant_factor_ci_high"]].notna().all().all()


def test_variant_factor_and_difference_within_the_variant(
    run_dir: Path, summary: pd.DataFrame
) -> None:
    rows = summary.set_index(["service", "variant"])
    lt = pd.read_csv(run_dir / "loadtests.csv")
    seed_rps = lt[(lt["payload"] == "seed") & (lt["concurrency"] == 50) & ~lt["seed_table"]]
    seed_rps = seed_rps.set_index(["service", "variant", "round"])["rps"].sort_index()
    for service in SERVICES:
        fp32, int8 = rows.loc[(service, "fp32"), "rps"], rows.loc[(service, "int8"), "rps"]
        assert rows.loc[(service, "fp32"), "variant_factor"] == 1.0
        # Paired per round: the geometric mean of each round's int8 ÷ fp32.
        per_round = seed_rps.loc[(service, "int8")] / seed_rps.loc[(service, "fp32")]
        factor = rows.loc[(service, "int8"), "variant_factor"]
        assert factor == pytest.approx(float(np.exp(np.log(per_round).mean())))
        low, high = rows.loc[(service, "int8"), ["variant_factor_ci_low", "variant_factor_ci_high"]]
        assert low < factor < high
        assert int8 > fp32  # the synthetic int8 model is faster
    base = rows.loc[("python", "int8"), "rps"]
    assert rows.loc[("rust-native-release", "int8"), "difference_pct"] == pytest.approx(
        (rows.loc[("rust-native-release", "int8"), "rps"] - base) / base * 100
    )
    assert rows.loc[("python", "int8"), "difference_pct"] == 0


def test_ceiling_overhead_and_measures_per_variant(
    run: reader.Run, run_dir: Path, summary: pd.DataFrame
) -> None:
    ce = pd.read_csv(run_dir / "ceiling.csv")
    cs = pd.read_csv(run_dir / "coldstarts.csv")
    rows = summary.set_index(["service", "variant"])
    for service in ("python", "rust-native-release"):
        impl = run.fact(service, "inference")
        for variant in VARIANTS:
            mine = ce[(ce["impl"] == impl) & (ce["variant"] == variant) & (ce["payload"] == "seed")]
            ceiling = 1e6 / mine["total_us"].median() * run.server_cores
            row = rows.loc[(service, variant)]
            assert row["ceiling_rps"] == pytest.approx(ceiling)
            # paired per round against its loop: between the rounds' extremes of rps ÷ loop
            loop = mine[mine["concurrency"] == 50].groupby("round")["total_us"].median()
            assert row["efficiency_ci_low"] < row["efficiency"] < row["efficiency_ci_high"]
            assert row["efficiency"] == pytest.approx(row["rps"] / ceiling, rel=0.1)
            assert len(loop) >= 2
            starts = cs[(cs["service"] == service) & (cs["variant"] == variant)]
            assert row["cold_start_s"] == pytest.approx(starts["cold_start_s"].median())
    by_impl = tables.ceilings(run).set_index(["impl", "variant", "payload"])["total_us"]
    assert by_impl[("python", "int8", "seed")] < by_impl[("python", "fp32", "seed")] / 2


def test_other_tables_are_keyed_by_variant(run: reader.Run) -> None:
    assert list(tables.unstable_configs(run).columns[:4]) == list(tables.CONFIG)
    decomposition = measures.stage_decomposition(run)
    assert set(decomposition["variant"]) == set(VARIANTS)
    pivot = tables.by_payload(run, "rps")
    assert list(pivot.index[:2]) == ["Python · fp32", "Python · int8"]
    assert list(pivot.columns) == ["seed", "short"]
    assert run.units_in_order()[:2] == [("python", "fp32"), ("python", "int8")]
    assert run.variants_in_order() == list(VARIANTS) and run.multi_variant


def test_seed_table_for_each_variant(run: reader.Run, summary: pd.DataFrame) -> None:
    fp32 = seed.seed_table(summary, run.facts)
    assert fp32.equals(seed.seed_table(summary[summary["variant"] == "fp32"], run.facts))
    int8 = seed.seed_table(summary, run.facts, variant="int8")
    rows = summary.set_index(["service", "variant"])
    assert int8.loc["Requests/sec", "Python"] == rows.loc[("python", "int8"), "table_rps"]
    assert any(c.startswith("Difference %") for c in int8.columns)
    assert not seed.difference_table(summary, run.facts, variant="int8").isna().all().all()
    assert seed.seed_table(summary, run.facts, variant="optimized").empty
