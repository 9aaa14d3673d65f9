"""What moves throughput: the language and variant factors of a synthetic run, and what
each variant gives up (variants.csv)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from rundata import SHOWN_SERVICES as SERVICES
from rundata import make_run_dir, make_variant_run

from servebench import registry
from servebench.analysis import factors, ratios, tables
from servebench.rundir import reader
from servebench.rundir.upgrade import upgrade_summary

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    rd = make_variant_run(tmp_path_factory.mktemp("factors"), services=SERVICES, payloads=["seed"])
    return reader.load_run(rd)


@pytest.fixture(scope="module")
def summary(run: reader.Run) -> pd.DataFrame:
    return tables.build_summary(run, write=False)


def rps(summary: pd.DataFrame, service: str, variant: str) -> float:
    return float(summary.set_index(["service", "variant"]).loc[(service, variant), "rps"])


def test_each_factor_is_a_ratio_of_measured_rps(run: reader.Run, summary: pd.DataFrame) -> None:
    tidy = factors.throughput_factors(summary, run.facts)
    assert list(tidy.columns) == factors.FACTOR_COLUMNS
    rows = tidy.set_index(["factor", "service", "variant"])
    native = "rust-native-release"
    assert rows.loc[("language", native, "int8"), "ratio"] == pytest.approx(
        rps(summary, native, "int8") / rps(summary, "python", "int8")
    )
    assert rows.loc[("variant", "python", "int8"), "ratio"] == pytest.approx(
        rps(summary, "python", "int8") / rps(summary, "python", "fp32")
    )
    both = rows.loc[("both", native, "int8"), "ratio"]
    assert both == pytest.approx(rps(summary, native, "int8") / rps(summary, "python", "fp32"))
    # The factors multiply: language (fp32) x variant (of the service) = both.
    language = rows.loc[("language", native, "fp32"), "ratio"]
    assert both == pytest.approx(language * rows.loc[("variant", native, "int8"), "ratio"])
    assert ("language", "python", "fp32") not in rows.index  # a baseline has no language factor


def test_in_process_factor_comes_from_the_ceilings(run: reader.Run, summary: pd.DataFrame) -> None:
    tidy = factors.throughput_factors(summary, run.facts)
    in_process = tidy[tidy["factor"] == factors.IN_PROCESS].set_index("inference")
    ce = tables.ceilings(run).set_index(["impl", "variant", "payload"])["total_us"]
    for kind in ("python", "rust"):
        expected = ce[(kind, "fp32", "seed")] / ce[(kind, "int8", "seed")]
        assert in_process.loc[kind, "ratio"] == pytest.approx(expected)
        assert 2.5 < in_process.loc[kind, "ratio"] < 3.5  # the synthetic int8 is ~3x in process


def test_factor_table_has_a_row_per_service_and_loop(
    run: reader.Run, summary: pd.DataFrame
) -> None:
    table = factors.factor_table(summary, run.facts)
    labels = [run.label(s) for s in SERVICES]
    loops = [f"{kind} in process" for kind in registry.inference_kinds()]
    assert list(table.index) == [*labels, *loops]
    assert list(table.columns) == [
        "service ÷ baseline · fp32",
        "service ÷ baseline · int8",
        "int8 ÷ fp32",
        "service · int8 ÷ baseline · fp32",
        "batched ÷ twin · fp32",
        "batched ÷ twin · int8",
    ]
    assert pd.isna(table.at["Python", "service ÷ baseline · fp32"])
    assert table.at["Python", "int8 ÷ fp32"] == pytest.approx(
        rps(summary, "python", "int8") / rps(summary, "python", "fp32")
    )


def test_a_published_summary_without_variants_is_fp32(
    run: reader.Run, summary: pd.DataFrame
) -> None:
    published = summary[summary["variant"] == "fp32"].drop(columns=["variant", "variant_factor"])
    old = upgrade_summary(published)  # as servebench.compare and the README read it
    table = factors.factor_table(old, run.facts)
    assert list(table.columns) == ["service ÷ baseline · fp32", "batched ÷ twin · fp32"]
    assert factors.summary_variants(old) == ["fp32"]


def test_faithfulness_from_variants_csv(run: reader.Run, tmp_path: Path) -> None:
    faith = factors.faithfulness(run)
    assert list(faith.columns) == factors.FAITHFULNESS_COLUMNS
    assert list(faith["variant"]) == ["fp32", "int8"]
    int8 = faith.set_index("variant").loc["int8"]
    assert int8["accuracy_change_pp"] == pytest.approx(
        (int8["held_out_accuracy"] - int8["fp32_held_out_accuracy"]) * 100
    )
    assert int8["onnx_vs_fp32"] == pytest.approx(0.25)
    assert int8["isa"] == "avx512_vnni"
    bare = make_run_dir(tmp_path, n=40, payloads=["seed"], concurrencies=[1, 50], optional=())
    assert factors.faithfulness(reader.load_run(bare)).empty


def test_paired_factors_carry_their_intervals(run: reader.Run, summary: pd.DataFrame) -> None:
    """With the seed point's ratios.csv rows, the language, variant, in-process variant and
    batching factors are the paired estimates with their 95 % intervals; both still
    multiplies exactly."""
    seed_ratios = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    paired = seed_ratios.set_index(["kind", "service", "variant"])
    tidy = factors.throughput_factors(summary, run.facts, seed_ratios)
    rows = tidy.set_index(["factor", "service", "variant"])
    native, batched = "rust-native-release", "rust-native-batched"
    for factor, kind, key in (
        ("language", "baseline", (native, "int8")),
        ("variant", "variant", ("python", "int8")),
        ("batching", "batching", (batched, "fp32")),
    ):
        mine, theirs = rows.loc[(factor, *key)], paired.loc[(kind, *key)]
        assert mine["ratio"] == theirs["ratio"], factor
        assert (mine["ci_low"], mine["ci_high"]) == (
            theirs["ratio_ci_low"],
            theirs["ratio_ci_high"],
        )
        assert mine["ci_low"] < mine["ratio"] < mine["ci_high"]
    # The summary's variant factor is the same paired estimate.
    python_int8 = summary.set_index(["service", "variant"]).loc[("python", "int8")]
    assert rows.loc[("variant", "python", "int8"), "ratio"] == python_int8["variant_factor"]
    both = rows.loc[("both", native, "int8"), "ratio"]
    language = rows.loc[("language", native, "fp32"), "ratio"]
    assert both == pytest.approx(language * rows.loc[("variant", native, "int8"), "ratio"])
    # The in-process factor is the loops' paired ratio (they were timed in the rounds).
    loops = tidy[tidy["factor"] == factors.IN_PROCESS].set_index("inference")
    for kind in ("python", "rust"):
        theirs = paired.loc[("in_process_variant", f"in-process:{kind}", "int8")]
        assert loops.loc[kind, "ratio"] == theirs["ratio"]
        assert loops.loc[kind, "ci_low"] == theirs["ratio_ci_low"] < theirs["ratio"]
    # Without ratios nothing claims an interval.
    assert factors.throughput_factors(summary, run.facts)[["ci_low", "ci_high"]].isna().all().all()
    table = factors.factor_table(summary, run.facts, seed_ratios, with_ci=True)
    cell = table.at[run.label(native), "service ÷ baseline · int8"]
    language_int8 = rows.loc[("language", native, "int8")]
    assert cell == ratios.formatted(
        language_int8["ratio"], language_int8["ci_low"], language_int8["ci_high"]
    )
    assert "[" in cell and table.at["Python", "service ÷ baseline · fp32"] == "–"
    with pytest.raises(ValueError, match="one point"):
        factors.throughput_factors(summary, run.facts, tables.ratios(run))
