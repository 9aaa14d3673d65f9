"""ratios.csv and the paired columns of per_config.csv and summary.csv, on synthetic
interleaved runs whose true ratios are known (tests/rundata.py: a service's work per request
is 0.9 ** its display order of the first's, a variant's is rundata_files.variant_share of
fp32's), and on runs without points.csv."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import (
    CONTROL,
    CONTROL_BASELINE,
    OPTIONAL,
    RUNGS,
    data_md_columns,
    make_run_dir,
    make_variant_run,
)
from rundata import SHOWN_SERVICES as SERVICES
from rundata_files import variant_share
from scipy import stats as scipy_stats

from servebench import registry
from servebench.analysis import paired, ratios, stability, tables
from servebench.rundir import reader
from servebench.rundir.rounds import rounds_of

pytestmark = pytest.mark.unit

#: The seed point of every synthetic run, and the one point given more rounds here.
SEED = ("seed", 50)
LONGER = {SEED: 6}


def load(run_dir: Path) -> reader.Run:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about optional inputs: not what is tested here
        return reader.load_run(run_dir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The mixed workload too, so that its replays give every kind of ratio.
    return make_variant_run(tmp_path_factory.mktemp("ratios"), n=80, rounds=LONGER, mixed=[50])


@pytest.fixture(scope="module")
def run(run_dir: Path) -> reader.Run:
    return load(run_dir)


@pytest.fixture(scope="module")
def summary(run: reader.Run) -> pd.DataFrame:
    return tables.build_summary(run)  # writes ratios.csv too


def services_only(table: pd.DataFrame) -> pd.DataFrame:
    """The ratios between services (the in-process ones come from ceiling.csv's rounds)."""
    return table[table["kind"].isin(paired.KINDS)].reset_index(drop=True)


def truth(service: str, variant: str, versus: str, versus_variant: str) -> float:
    """The synthetic run's true ratio of Requests/sec (rps ∝ 1 / work per request)."""
    known = registry.load_registry()

    def work(s: str, v: str) -> float:
        same = known[known[s].baseline] if known[s].control else known[s]  # A/A: its baseline
        return 0.9**same.order * variant_share(v)

    return work(versus, versus_variant) / work(service, variant)


def test_ratios_csv_is_written_with_the_documented_columns(
    run_dir: Path, summary: pd.DataFrame
) -> None:
    on_disk = pd.read_csv(run_dir / "ratios.csv")
    assert list(on_disk.columns) == data_md_columns("ratios.csv")
    assert set(on_disk["kind"]) == set(ratios.KINDS)
    assert set(ratios.KINDS) == {
        "control", "baseline", "tuned", "step", "variant", "batching", "efficiency",
        "in_process_variant", "batch_size", "queue_efficiency", "queue_batching",
    }  # fmt: skip
    control = on_disk[on_disk["kind"] == "control"]
    assert len(control) == len(on_disk[["payload", "concurrency"]].drop_duplicates())
    assert set(zip(control["service"], control["versus_service"], strict=True)) == {
        (CONTROL, CONTROL_BASELINE)
    }
    # Every non-baseline unit against its baseline, int8 against fp32, batched against twin.
    seed = ratios.at_point(on_disk, *SEED)
    known = registry.load_registry()
    baseline = seed[seed["kind"] == "baseline"]
    expected = {(s, v) for s in SERVICES if known[s].baseline for v in ("fp32", "int8")}
    expected |= {(s, "fp32") for s in RUNGS}  # a rung: fp32 alone
    assert set(zip(baseline["service"], baseline["variant"], strict=True)) == expected
    assert set(seed.loc[seed["kind"] == "variant", "variant"]) == {"int8"}
    batching = seed[seed["kind"] == "batching"]
    assert set(batching["service"]) == {s for s in SERVICES if known[s].batching}
    assert all(
        known[s].twin == t
        for s, t in zip(batching["service"], batching["versus_service"], strict=True)
    )


def test_each_ratio_is_the_geometric_mean_with_a_t_interval(
    run_dir: Path, summary: pd.DataFrame
) -> None:
    """Recomputed from loadtests.csv's req/s with scipy's t quantile."""
    lt = pd.read_csv(run_dir / "loadtests.csv")
    lt = lt[~lt["seed_table"]]  # the seed table's full runs pair nothing
    table = pd.read_csv(run_dir / "ratios.csv")
    table = table[table["kind"].isin(paired.KINDS)]  # the services' (in-process ones below)
    for r in table.sample(25, random_state=1).itertuples(index=False):
        at = lt[(lt["payload"] == r.payload) & (lt["concurrency"] == r.concurrency)]
        mine = at[(at["service"] == r.service) & (at["variant"] == r.variant)]
        theirs = at[(at["service"] == r.versus_service) & (at["variant"] == r.versus_variant)]
        per_round = mine.set_index("round")["rps"] / theirs.set_index("round")["rps"]
        logs = np.log(per_round.to_numpy())
        half = scipy_stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs))
        assert r.rounds == len(logs)
        assert r.ratio == pytest.approx(math.exp(logs.mean()))
        # paired.T_975 has three decimals: the bounds agree to that.
        assert r.ratio_ci_low == pytest.approx(math.exp(logs.mean() - half), rel=1e-3)
        assert r.ratio_ci_high == pytest.approx(math.exp(logs.mean() + half), rel=1e-3)
        assert r.converged == (r.half_width_pct <= 3.0)


def test_the_estimates_find_the_synthetic_truth(summary: pd.DataFrame, run: reader.Run) -> None:
    table = services_only(tables.ratios(run))
    # The mixed workload's bursts follow their own made-up rule (rundata_files.mixed_burst).
    table = table[table["payload"] != "mixed"].reset_index(drop=True)
    slowed = (table["service"] == "rust-ffi-debug") & (table["payload"] == "seed")
    slowed &= table["concurrency"] == 50  # rundata slows one of its rounds there by 30 %
    known = [
        truth(r.service, r.variant, r.versus_service, r.versus_variant)
        for r in table.itertuples(index=False)
    ]
    error = (table["ratio"] / known - 1).abs()
    # Neighbouring services differ by 11 %: 7 % tells a wrong pairing from three noisy rounds.
    assert (error[~slowed] < 0.07).all(), table[~slowed & (error >= 0.07)]
    inside = (table["ratio_ci_low"] <= known) & (np.array(known) <= table["ratio_ci_high"])
    assert inside[~slowed].mean() > 0.85


def test_rounds_differ_per_point(run: reader.Run, summary: pd.DataFrame) -> None:
    table = services_only(tables.ratios(run))
    at_seed = (table["payload"] == SEED[0]) & (table["concurrency"] == SEED[1])
    assert table.loc[at_seed, "rounds"].eq(6).all()
    assert table.loc[~at_seed, "rounds"].eq(3).all()
    pc = tables.per_config(run)
    assert set(pc.loc[(pc["payload"] == "seed") & (pc["concurrency"] == 50), "rounds"]) == {6}
    assert summary["rounds"].eq(6).all()
    assert run.rounds.text == "3–6 rounds"
    points = stability.points_table(run).set_index(["payload", "concurrency"])
    assert points.at[SEED, "rounds"] == 6 and points.at[("short", 1), "rounds"] == 3


def test_per_config_carries_the_baseline_ratio(run: reader.Run, summary: pd.DataFrame) -> None:
    pc = tables.per_config(run)
    base = tables.ratios(run)
    base = base[base["kind"] == "baseline"].set_index(
        ["service", "variant", "payload", "concurrency"]
    )
    for r in pc.itertuples(index=False):
        if not run.baseline(r.service):
            assert r.ratio == 1.0 and math.isnan(r.ratio_ci_low) and math.isnan(r.ratio_ci_high)
            continue
        key = (r.service, r.variant, r.payload, r.concurrency)
        assert r.ratio == base.at[key, "ratio"]
        assert (r.ratio_ci_low, r.ratio_ci_high) == tuple(
            base.loc[key, ["ratio_ci_low", "ratio_ci_high"]]
        )


def test_summary_converged_follows_every_ratio_the_unit_is_in(
    run: reader.Run, summary: pd.DataFrame
) -> None:
    seed = ratios.at_point(tables.ratios(run), *SEED)
    for r in summary.itertuples(index=False):
        unit = (r.service, r.variant)
        mine = seed[
            ((seed["service"] == unit[0]) & (seed["variant"] == unit[1]))
            | ((seed["versus_service"] == unit[0]) & (seed["versus_variant"] == unit[1]))
        ]
        assert len(mine) > 0  # python · fp32 is the other side of every fp32 ratio
        assert r.converged == bool(mine["converged"].all()), unit
    # rundata slowed one round of rust-ffi-debug · fp32 there: it cannot have converged.
    rows = summary.set_index(["service", "variant"])
    assert not rows.at[("rust-ffi-debug", "fp32"), "converged"]
    assert not rows.at[("python", "fp32"), "converged"]  # it takes part in that ratio


def test_a_run_without_points_pairs_by_round_without_a_target(tmp_path: Path) -> None:
    """A run that records no point (points.csv, drift.csv absent) still pairs its rounds, but
    claims no precision reached."""
    optional = [name for name in OPTIONAL if name not in ("points", "drift")]
    run_dir = make_variant_run(tmp_path, n=60, optional=optional)
    run = load(run_dir)
    assert run.points is None and run.drift is None
    assert run.rounds.text == "3–12 rounds (adaptive)"
    summary = tables.build_summary(run)
    assert summary["converged"].isna().all()
    assert pd.read_csv(run_dir / "summary.csv")["converged"].isna().all()  # empty cells
    assert summary.loc[summary["variant"] == "int8", "variant_factor_ci_low"].notna().all()
    assert (run_dir / "ratios.csv").is_file()
    assert stability.points_table(run).empty and math.isnan(stability.drift_range_pct(run))


def test_a_burst_without_answers_pairs_nothing(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, n=60, payloads=["seed"], concurrencies=[1, 50])
    requests = pd.read_csv(run_dir / "requests.csv.gz")
    lost = (requests["service"] == "rust-native-release") & (requests["round"] == 1)
    lost &= requests["concurrency"] == 50
    requests[~lost].to_csv(run_dir / "requests.csv.gz", index=False)
    run = load(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = tables.ratios(run)
    row = table[(table["service"] == "rust-native-release") & (table["concurrency"] == 50)].iloc[0]
    assert row["rounds"] == 2  # its round 1 had no answer to divide
    assert any("without a positive req/s" in n for n in run.notes)


def test_the_reader_reads_points_and_drift(run: reader.Run, run_dir: Path) -> None:
    assert run.points is not None and run.drift is not None
    assert list(run.points.columns) == data_md_columns("points.csv")
    assert list(run.drift.columns) == data_md_columns("drift.csv")
    first = run.drift.sort_values("seq").iloc[0]
    assert first["payload"] == "" and first["concurrency"] == 0 and first["round"] == -1
    assert run.points["converged"].dtype == bool
    # A probe after every round of every point (the seed table's too), and one before the first.
    assert len(run.drift) == 1 + int(run.points["rounds"].sum()) + 1


def test_stability_tables(run: reader.Run) -> None:
    points = stability.points_table(run)
    assert list(points.columns) == stability.POINT_COLUMNS
    short = stability.unconverged(run)
    assert len(short) == int((~run.points["converged"]).sum())
    assert set(short["stop"]) <= {"max_rounds", "budget"}
    probe = run.drift["probe_us"]
    assert stability.drift_range_pct(run) == pytest.approx(
        (probe.max() - probe.min()) / probe.median() * 100
    )
    spans = stability.drift_spans(run)
    assert len(spans) == len(points)
    assert (spans["start_s"] < spans["end_s"]).all()
    assert (spans["start_s"].iloc[1:].to_numpy() == spans["end_s"].iloc[:-1].to_numpy()).all()
    table_round = (run.points["payload"] == "seed") & (run.points["concurrency"] == 50)
    assert list(spans["rounds"]) == list(run.points["rounds"] + table_round)


@pytest.mark.parametrize(
    ("parameters", "points", "text", "target"),
    [
        (
            {"min_rounds": 4, "max_rounds": 20, "target_ci_pct": 2},
            None,
            "4–20 rounds (adaptive)",
            2.0,
        ),
        ({"min_rounds": 4}, pd.DataFrame({"rounds": [5, 9, 5]}), "5–9 rounds", 3.0),
        ({"min_rounds": 4}, pd.DataFrame({"rounds": [7, 7]}), "7 rounds", 3.0),
        ({}, None, "rounds", 3.0),
    ],
)
def test_rounds_from_parameters_or_points(
    parameters: dict, points: pd.DataFrame | None, text: str, target: float
) -> None:
    rounds = rounds_of(parameters, points)
    assert rounds.text == text and rounds.target_ci_pct == target


def test_formatted_ratio() -> None:
    assert ratios.formatted(1.2834, 1.2211, 1.3402) == "1.28× [1.22–1.34]"
    assert ratios.formatted(1.0, math.nan, math.nan) == "1.00×"
    assert ratios.formatted(math.nan) == "–"
