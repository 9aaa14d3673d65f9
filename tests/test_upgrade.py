"""servebench.rundir.upgrade: a run written before each column had one meaning (issue 21) reads
exactly like the same run written today, and old published summaries read in today's shape."""

from __future__ import annotations

import math
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from rundata import OLD_NAMES, make_variant_run, with_loops_in_passes, with_old_names

from servebench import plots
from servebench.analysis import seed, tables
from servebench.plots import style
from servebench.rundir import reader
from servebench.rundir.upgrade import read_summary

pytestmark = pytest.mark.unit

#: The Run's frames read from the files OLD_NAMES rewrites (and stages.csv, which lost a column).
FRAMES = ("loadtests", "requests", "drift", "coldstarts", "stages")
#: Figures drawn from renamed columns (drift.csv's round; the rounds in rps_bars' title). The
#: frames being equal (test_an_old_run_reads_like_a_new_one), no other figure can differ.
FIGURES = ("drift", "rps_bars")


def load(run_dir: Path) -> reader.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about optional inputs: not what is tested here
        return reader.load_run(run_dir)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(today's run, the same run with the old names)."""
    new = make_variant_run(tmp_path_factory.mktemp("new"), rounds={("seed", 50): 4})
    tables.build_summary(new)  # summary.csv and per_config.csv, renamed in the old copy
    old = with_old_names(shutil.copytree(new, tmp_path_factory.mktemp("old") / new.name))
    return new, old


def test_the_old_files_have_the_old_names(runs: tuple[Path, Path]) -> None:
    _, old = runs
    for name, renamed in OLD_NAMES.items():
        columns = set(pd.read_csv(old / name, nrows=1).columns)
        assert set(renamed.values()) <= columns and not set(renamed) & columns, name
    assert set(pd.read_csv(old / "stages.csv")["repeat"]) == {0}


def test_an_old_run_reads_like_a_new_one(runs: tuple[Path, Path]) -> None:
    new, old = load(runs[0]), load(runs[1])
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(old, name), getattr(new, name), obj=name)
    assert old.notes == new.notes
    for table in (tables.per_config, tables.ratios, tables.ceilings, tables.unstable_configs):
        pd.testing.assert_frame_equal(table(old), table(new), obj=table.__name__)
    summary = tables.build_summary(old, write=False)
    pd.testing.assert_frame_equal(summary, tables.build_summary(new, write=False))
    assert "rounds" in summary and "repeats" not in summary


def test_a_run_that_timed_its_loops_in_passes_has_no_in_process_interval(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Before issue 22 the loops ran in two passes apart from the rounds (``repeat``, then
    ``ceiling_pass``): their ceilings still read, pooled, but nothing pairs them."""
    new = load(runs[0])
    old = load(with_loops_in_passes(shutil.copytree(runs[0], tmp_path / runs[0].name)))
    assert "ceiling_pass" in old.ceiling and "round" not in old.ceiling
    pd.testing.assert_frame_equal(tables.ceilings(old), tables.ceilings(new))
    kinds = set(tables.ratios(old)["kind"])
    assert kinds.isdisjoint({"efficiency", "in_process_variant", "batch_size"})
    assert {"efficiency", "in_process_variant", "batch_size"} <= set(tables.ratios(new)["kind"])
    summary = tables.build_summary(old, write=False)
    assert summary["efficiency"].notna().all() and summary["efficiency_ci_low"].isna().all()


def test_an_old_run_draws_the_same_figures(runs: tuple[Path, Path], tmp_path: Path) -> None:
    new, old = load(runs[0]), load(runs[1])
    for name in FIGURES:
        drawn = [
            style.save(plots.draw(run, name), tmp_path / side, name)
            for run, side in ((new, "new"), (old, "old"))
        ]
        assert drawn[0].read_bytes() == drawn[1].read_bytes(), name


def test_a_summary_published_before_variants_and_interleaving(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    """fp32 rows, no variant column, no paired ratios, ``repeats``: read in today's shape."""
    summary = read_summary(runs[0])
    fp32 = summary[summary["variant"] == "fp32"].reset_index(drop=True)
    paired = ["variant_factor", "ratio", "ratio_ci_low", "ratio_ci_high", "converged"]
    paired += ["variant_factor_ci_low", "variant_factor_ci_high"]
    old = fp32.drop(columns=["variant", *paired]).rename(columns={"rounds": "repeats"})
    old.to_csv(tmp_path / "summary.csv", index=False)
    read = read_summary(tmp_path)
    assert list(read.columns[:2]) == ["service", "variant"] and set(read["variant"]) == {"fp32"}
    assert set(read.columns) == set(summary.columns)
    assert read["variant_factor"].eq(1.0).all() and read["ratio"].isna().all()
    assert read["rounds"].tolist() == fp32["rounds"].tolist()
    assert not math.isnan(seed.of_variant(read)["rps"].iloc[0])
