"""servebench.compare: two synthetic runs, published summary-only directories, and a run made
before interleaving (read from its summary.csv)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import SHOWN_SERVICES as SERVICES
from rundata import make_run_dir, make_variant_run

from servebench import compare, paths
from servebench.analysis import tables
from servebench.rundir import reader
from servebench.rundir.upgrade import read_summary

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    return make_run_dir(root, n=120, services=SERVICES, concurrencies=[1, 50])


def test_compare_runs(run_dir: Path, tmp_path: Path) -> None:
    other = make_run_dir(
        tmp_path, n=120, seed=99, services=SERVICES[:3], payloads=["seed"], concurrencies=[1, 50]
    )
    table = compare.compare_runs(run_dir, other)
    assert list(table["service"]) == SERVICES
    a = tables.build_summary(run_dir, write=False).set_index("service")
    b = tables.build_summary(other, write=False).set_index("service")
    row = table.set_index("service").loc["python"]
    assert row["rps_change_pct"] == pytest.approx(
        (b.loc["python", "rps"] - a.loc["python", "rps"]) / a.loc["python", "rps"] * 100
    )
    assert np.isnan(table.set_index("service").loc["rust-native-release", "rps_b"])
    assert compare.fig_compare(table, tmp_path / "cmp").is_file()
    meta = compare.compare_metadata(run_dir, other)
    assert "parameters.payloads" in set(meta["key"])
    assert compare.main([str(run_dir), str(other), "--out", str(tmp_path / "cli")]) == 0
    assert (tmp_path / "cli" / "compare.csv").is_file()


def test_compare_with_published_reference_data(run_dir: Path, tmp_path: Path) -> None:
    """data/reference/ keeps summary.csv but no raw rows (and, from older runs, a services.csv
    without the facts columns: order and colours then come from the registry)."""
    reference = tmp_path / "reference"
    shutil.copytree(paths.DATA / "reference", reference, ignore=shutil.ignore_patterns("repl*"))
    table = compare.compare_runs(reference, run_dir)
    fp32 = table[table["variant"] == "fp32"]
    assert list(fp32["service"]) == SERVICES  # the synthetic run: every service, fp32 only
    published = read_summary(reference)
    published = set(published.loc[published["variant"] == "fp32", "service"])
    both = fp32[fp32["service"].isin(published)]
    assert len(both) == len(published & set(SERVICES)) >= 5
    assert both["rps_a"].notna().all() and fp32["rps_b"].notna().all()
    # Services or variants only one side measured have no value on the other side.
    assert fp32.loc[~fp32["service"].isin(published), "rps_a"].isna().all()
    assert table.loc[table["variant"] != "fp32", "rps_b"].isna().all()
    assert set(table.attrs["colors"]) >= set(SERVICES)


def test_compare_is_keyed_by_service_and_variant(run_dir: Path, tmp_path: Path) -> None:
    """A run with int8 against one without: the fp32 rows pair up, int8 has no side A."""
    both = make_variant_run(tmp_path, seed=5, payloads=["seed"])
    table = compare.compare_runs(run_dir, both)
    assert list(table.columns[:3]) == ["service", "variant", "label"]
    assert list(zip(table["service"], table["variant"], strict=True)) == [
        (s, v) for s in SERVICES for v in ("fp32", "int8")
    ]
    rows = table.set_index(["service", "variant"])
    assert rows["rps_a"].loc[(slice(None), "fp32")].notna().all()
    assert rows["rps_a"].loc[(slice(None), "int8")].isna().all()
    b = tables.build_summary(both, write=False).set_index(["service", "variant"])
    assert rows.loc[("python", "int8"), "rps_b"] == b.loc[("python", "int8"), "rps"]
    assert compare.fig_compare(table, tmp_path / "cmp").is_file()


def test_compare_puts_each_runs_paired_ratio_and_interval_side_by_side(
    run_dir: Path, tmp_path: Path
) -> None:
    other = make_run_dir(tmp_path, n=120, seed=7, services=SERVICES, concurrencies=[1, 50])
    table = compare.compare_runs(run_dir, other).set_index("service")
    a = tables.build_summary(run_dir, write=False).set_index("service")
    b = tables.build_summary(other, write=False).set_index("service")
    rust = table.loc["rust-native-release"]
    for side, summary in (("a", a), ("b", b)):
        for column in compare.RATIO:
            assert rust[f"{column}_{side}"] == summary.loc["rust-native-release", column]
    assert rust["ratio_change_pct"] == pytest.approx(
        (rust["ratio_b"] - rust["ratio_a"]) / rust["ratio_a"] * 100
    )
    overlap = max(rust["ratio_ci_low_a"], rust["ratio_ci_low_b"]) <= min(
        rust["ratio_ci_high_a"], rust["ratio_ci_high_b"]
    )
    assert rust["ratio_cis_overlap"] == overlap
    # The baseline has no interval (it is 1 by definition): no verdict on overlap.
    assert (
        table.loc["python", "ratio_a"] == 1.0 and table.loc["python", "ratio_cis_overlap"] is None
    )


def test_compare_with_a_summary_published_before_variants_and_interleaving(run_dir: Path) -> None:
    """The replication kept under data/reference/: no variant, no paired ratio, ``repeats``."""
    old = paths.DATA / "reference" / "replication-20261126-040336"
    assert "variant" not in pd.read_csv(old / "summary.csv")
    table = compare.compare_runs(old, run_dir)
    assert set(table["variant"]) == {"fp32"}
    both = table[table["rps_a"].notna() & table["rps_b"].notna()]
    assert len(both) >= 5 and both["ratio_a"].isna().all() and both["ratio_b"].notna().all()
    assert both["ratio_cis_overlap"].isna().all()  # A has no interval to overlap with


def test_a_run_made_before_interleaving_is_compared_from_its_summary(
    run_dir: Path, tmp_path: Path
) -> None:
    """Its raw rows are refused (parameters.repeats); its summary.csv stands in for them."""
    old = shutil.copytree(run_dir, tmp_path / "old")
    summary = tables.build_summary(old, write=False)
    summary.rename(columns={"rounds": "repeats"}).to_csv(old / "summary.csv", index=False)
    meta = json.loads((old / "metadata.json").read_text())
    meta["parameters"]["repeats"] = meta["parameters"].pop("min_rounds")
    (old / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(reader.RunDataError, match="before interleaving"):
        reader.load_run(old)
    table = compare.compare_runs(old, run_dir)
    for column in ("rps", "p99_s", "ratio"):  # the same bursts, summarised once
        pd.testing.assert_series_equal(
            table[f"{column}_a"], table[f"{column}_b"], check_names=False
        )
