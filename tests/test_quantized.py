"""The report's "int8, dynamic or static" section (analysis/quantized.py) on synthetic runs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from rundata import make_variant_run

from servebench.analysis import quantized, tables
from servebench.rundir.reader import Run, load_run

pytestmark = pytest.mark.unit

VARIANTS = ("fp32", "int8", "int8-static")


def loaded(run_dir: Path) -> tuple[Run, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about optional inputs: not what is tested here
        run = load_run(run_dir)
        return run, tables.build_summary(run, write=False)


@pytest.fixture
def three(tmp_path: Path) -> tuple[Run, pd.DataFrame]:
    return loaded(make_variant_run(tmp_path, variants=VARIANTS))


def test_the_variant_table_puts_faithfulness_beside_in_process_speed(
    three: tuple[Run, pd.DataFrame],
) -> None:
    run, summary = three
    table = quantized.variant_table(run, summary)
    assert list(table.index) == list(VARIANTS)
    assert not table.loc["int8", "batch-invariant"]
    assert table.loc["int8-static", "max Δscore from batch-mates"] == 0.0
    assert table.loc["int8", "labels flipped by batch-mates"] == 1
    loops = [c for c in table if c.endswith("loop, batch 1 (items/s)")]
    assert loops, "an in-process loop's batch-1 items/s per variant"
    for column in loops:
        # rundata: int8 speeds inference up 4.5x, int8-static 3.8x
        assert (
            table.loc["int8", column] > table.loc["int8-static", column] > table.loc["fp32", column]
        )
    paths = [c for c in table if c.endswith("batch path, best (items/s)")]
    assert paths and all(table[c].notna().all() for c in paths)
    batches = [c for c in table if c.endswith("batch path, best (batch)")]
    assert all(table[c].max() > 1 for c in batches)  # batching pays in the synthetic run
    shown = quantized.shown_variant_table(table)
    assert list(shown["batch-invariant"]) == ["yes", "no", "yes"]


def test_the_served_table_has_every_unit_at_the_seed_point_with_its_ratio_to_fp32(
    three: tuple[Run, pd.DataFrame],
) -> None:
    run, summary = three
    served = quantized.served_table(run, summary)
    assert list(served.columns) == quantized.SERVED_COLUMNS
    quantized_rows = served[served["variant"] != "fp32"]
    assert len(quantized_rows) and quantized_rows["vs_fp32"].notna().all()
    rows = quantized_rows.dropna(subset=["vs_fp32_ci_low"])
    assert (
        (rows["vs_fp32_ci_low"] <= rows["vs_fp32"]) & (rows["vs_fp32"] <= rows["vs_fp32_ci_high"])
    ).all()
    assert (served.loc[served["variant"] == "fp32", "vs_fp32"].fillna(1.0) == 1.0).all()


def test_the_advice_names_the_invariant_variant_and_what_it_costs(
    three: tuple[Run, pd.DataFrame],
) -> None:
    run, summary = three
    text = quantized.advice(run, summary)
    assert text is not None
    assert text.startswith("A batched service should serve **int8-static**")
    assert "0.011" in text  # how far dynamic int8's answers move with batch-mates
    served = quantized.served_table(run, summary).set_index(["service", "variant"])["rps"]
    for service in ("python-batched", "rust-native-batched"):
        cost = served[(service, "int8-static")] / served[(service, "int8")]
        assert f"{run.label(service)} {cost:.2f}×" in text


def test_without_an_invariant_variant_the_advice_says_to_serve_unbatched(tmp_path: Path) -> None:
    run, summary = loaded(make_variant_run(tmp_path, variants=("fp32", "int8")))
    text = quantized.advice(run, summary)
    assert text is not None and text.startswith(
        "No quantized variant of this run is batch-invariant"
    )
    assert "int8" in text and "0.011" in text


def test_no_quantized_variant_no_advice(tmp_path: Path) -> None:
    run, summary = loaded(make_variant_run(tmp_path, variants=("fp32",)))
    assert quantized.advice(run, summary) is None


def test_a_service_measured_with_fp32_alone_is_not_in_the_served_table(
    three: tuple[Run, pd.DataFrame],
) -> None:
    """configs/default.yaml `base_variant_only`: the debug builds have nothing to compare."""
    run, summary = three
    service = str(summary["service"].iloc[0])
    fp32_only = summary[(summary["service"] != service) | (summary["variant"] == "fp32")]
    served = quantized.served_table(run, fp32_only)
    assert service not in set(served["service"])
    assert set(served["service"]) == set(summary["service"]) - {service}
