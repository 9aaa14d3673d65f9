"""The reader and the report's tables on synthetic run directories built per docs/DATA.md."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import (
    CONTROL,
    CONTROL_BASELINE,
    PROJECT_SERVICES,
    data_md_columns,
    make_bare_run,
    make_run_dir,
)
from rundata import SHOWN_SERVICES as SERVICES

from servebench import config, registry
from servebench.analysis import tables
from servebench.rundir import reader

pytestmark = pytest.mark.unit

PAYLOADS = ["seed", "short", "medium", "long"]
CONCURRENCIES = [1, 8, 50]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_dir(
        tmp_path_factory.mktemp("runs"),
        n=120,
        services=PROJECT_SERVICES,  # the A/A control too: no table shows it
        payloads=PAYLOADS,
        concurrencies=CONCURRENCIES,
    )


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> pd.DataFrame:
    return tables.build_summary(run_dir)


def test_summary_columns_exactly_as_data_md(run_dir: Path, summary: pd.DataFrame) -> None:
    expected = data_md_columns("summary.csv")
    assert list(summary.columns) == expected
    on_disk = pd.read_csv(run_dir / "summary.csv")
    assert list(on_disk.columns) == expected
    assert list(on_disk["service"]) == SERVICES  # the registry's order, python first
    filled = [c for c in expected if c not in tables.MAY_BE_EMPTY]
    assert summary[filled].notna().all().all(), summary.isna().sum()
    # A ratio of a unit to itself has no interval: the baseline's, and fp32's variant factor.
    run = reader.load_run(run_dir)
    roots = summary["service"].map(lambda s: not run.baseline(s))
    assert summary.loc[roots, "ratio"].eq(1.0).all()
    assert summary.loc[roots, "ratio_ci_low"].isna().all()
    assert summary.loc[~roots, ["ratio_ci_low", "ratio_ci_high"]].notna().all().all()
    assert summary[["variant_factor_ci_low", "variant_factor_ci_high"]].isna().all().all()
    assert summary["converged"].isin([True, False]).all()  # an interleaved run: a target


def test_services_csv_facts_as_data_md() -> None:
    """What the load test records per service is what DATA.md documents and the reader reads."""
    documented = data_md_columns("services.csv")
    facts = next(iter(registry.load_registry().values())).facts()
    assert documented[: len(facts)] == list(facts)
    assert list(facts) == ["service", *reader.FACT_COLUMNS]


def test_per_config_written(run_dir: Path, summary: pd.DataFrame) -> None:
    pc = pd.read_csv(run_dir / "per_config.csv")
    assert len(pc) == len(SERVICES) * len(PAYLOADS) * len(CONCURRENCIES)
    assert pc["rounds"].eq(3).all()
    assert (pc["rps_min"] <= pc["rps"]).all() and (pc["rps"] <= pc["rps_max"]).all()
    assert (pc["rps_ci_low"] <= pc["rps"]).all() and (pc["rps"] <= pc["rps_ci_high"]).all()
    err = pc[
        (pc["service"] == "rust-native-debug")
        & (pc["payload"] == "short")
        & (pc["concurrency"] == 8)
    ]
    assert int(err["errors"].iloc[0]) == 4  # 3 answers with 500 + 1 lost request


def test_summary_values_recomputed_independently(run_dir: Path, summary: pd.DataFrame) -> None:
    req = pd.read_csv(run_dir / "requests.csv.gz")
    lt = pd.read_csv(run_dir / "loadtests.csv")
    ce = pd.read_csv(run_dir / "ceiling.csv")
    facts = pd.read_csv(run_dir / "services.csv", keep_default_na=False).set_index("service")
    md = json.loads((run_dir / "metadata.json").read_text())
    seed = req[(req["payload"] == "seed") & (req["concurrency"] == 50)]
    rows = summary.set_index("service")
    for service in SERVICES:
        runs = lt[
            (lt["service"] == service) & (lt["payload"] == "seed") & (lt["concurrency"] == 50)
        ].set_index("round")
        table, runs = runs[runs["seed_table"]], runs[~runs["seed_table"]]
        assert len(table) == 1  # the seed table's full hey -n run, apart from the rounds
        mine = seed[seed["service"] == service]
        per = mine[mine["round"].isin(runs.index)].groupby("round")
        rps = per.size() / runs["total_s"]
        p99 = per["response_time_s"].quantile(0.99)
        full = mine[mine["round"].isin(table.index)]["response_time_s"]
        assert rows.loc[service, "rps"] == pytest.approx(rps.median())
        assert rows.loc[service, "rps_min"] == pytest.approx(rps.min())
        assert rows.loc[service, "p99_s"] == pytest.approx(p99.median())
        assert rows.loc[service, "slowest_s"] == pytest.approx(full.max())
        assert rows.loc[service, "total_s"] == pytest.approx(table["total_s"].iloc[0])
        assert rows.loc[service, "table_rps"] == pytest.approx(len(full) / table["total_s"].iloc[0])
        assert rows.loc[service, "n"] == table["n"].iloc[0]
        assert rows.loc[service, "spread_pct"] == pytest.approx(
            (rps.max() - rps.min()) / rps.median() * 100
        )
        impl = facts.loc[service, "inference"]  # what runs the model for this service
        total_us = ce[(ce["impl"] == impl) & (ce["payload"] == "seed")]["total_us"].median()
        cores = len(config.cpu_list(md["pinning"]["server_cpus"]))
        assert rows.loc[service, "ceiling_rps"] == pytest.approx(1e6 / total_us * cores)
        # efficiency: the service ÷ its loop paired per round (the loop's bursts: its rows of
        # one round at the seed point), the geometric mean of the rounds
        loop = ce[(ce["impl"] == impl) & (ce["payload"] == "seed") & (ce["concurrency"] == 50)]
        loop = loop[loop["variant"] == "fp32"].groupby("round")["total_us"].median()
        per_round = (rps / (1e6 / loop * cores)).dropna()
        assert rows.loc[service, "efficiency"] == pytest.approx(
            float(np.exp(np.log(per_round).mean()))
        )
        low, high = rows.loc[service, ["efficiency_ci_low", "efficiency_ci_high"]]
        assert low < rows.loc[service, "efficiency"] < high
        c1 = (
            req[
                (req["service"] == service) & (req["payload"] == "seed") & (req["concurrency"] == 1)
            ]
            .groupby("round")["response_time_s"]
            .median()
        )
        assert rows.loc[service, "overhead_ms"] == pytest.approx(c1.median() * 1e3 - total_us / 1e3)
    for service in SERVICES:
        base = rows.loc[facts.loc[service, "baseline"] or service, "rps"]
        assert rows.loc[service, "difference_pct"] == pytest.approx(
            (rows.loc[service, "rps"] - base) / base * 100
        )
    assert rows.loc["python", "difference_pct"] == 0  # the baseline against itself
    assert CONTROL not in rows.index  # the A/A control: the paired ratios only
    control = tables.ratios(run_dir).query("kind == 'control'")
    assert set(control["service"]) == {CONTROL}
    assert set(control["versus_service"]) == {CONTROL_BASELINE}
    assert bool(rows.loc["rust-ffi-debug", "unstable"])  # the builder slowed one round 30 %
    assert not bool(rows.loc["python", "unstable"])


def test_each_service_is_compared_with_its_own_baseline(tmp_path: Path) -> None:
    """Facts come from services.csv, not code: re-point one baseline, the numbers follow."""
    run_dir = make_run_dir(tmp_path, n=60, payloads=["seed"], concurrencies=[1, 50])
    services = pd.read_csv(run_dir / "services.csv", keep_default_na=False)
    services.loc[services["service"] == "rust-native-debug", "baseline"] = "rust-native-release"
    services.loc[services["service"] == "rust-ffi-release", "inference"] = "rust"
    services.to_csv(run_dir / "services.csv", index=False)
    summary = tables.build_summary(run_dir, write=False).set_index("service")
    native = summary.loc[["rust-native-debug", "rust-native-release"], "rps"]
    assert summary.loc["rust-native-debug", "difference_pct"] == pytest.approx(
        (native.iloc[0] - native.iloc[1]) / native.iloc[1] * 100
    )
    ce = tables.ceilings(run_dir).set_index(["impl", "payload"])
    assert summary.loc["rust-ffi-release", "ceiling_rps"] == pytest.approx(
        ce.loc[("rust", "seed"), "ceiling_rps"]
    )
    assert summary.loc["rust-ffi-debug", "ceiling_rps"] == pytest.approx(
        ce.loc[("python", "seed"), "ceiling_rps"]
    )


def test_old_services_csv_takes_missing_facts_from_the_registry(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path, n=60, payloads=["seed"], concurrencies=[50])
    old = pd.read_csv(run_dir / "services.csv")
    old[["service", "label", "language", "build", "cold_start_s", "size_mb", "binary"]].to_csv(
        run_dir / "services.csv", index=False
    )
    run = reader.load_run(run_dir)
    known = registry.load_registry()
    for service in run.services_in_order():
        assert run.fact(service, "inference") == known[service].inference
        assert run.baseline(service) == known[service].baseline
    assert [run.fact(s, "order") for s in run.services_in_order()] == sorted(
        known[s].order for s in run.services_in_order()
    )
    assert any("services.csv lacks inference" in n and "registry" in n for n in run.notes)


def test_a_service_nobody_describes_is_shown_by_name(tmp_path: Path) -> None:
    run_dir = make_run_dir(
        tmp_path, n=60, services=["python", "extra-svc"], payloads=["seed"], concurrencies=[50]
    )
    run = reader.load_run(run_dir)
    assert run.services_in_order() == ["python", "extra-svc"]
    assert run.label("extra-svc") == "extra-svc"
    assert run.baseline("extra-svc") == "python"  # the run's one root baseline
    summary = tables.build_summary(run, write=False).set_index("service")
    assert pd.isna(summary.loc["extra-svc", "ceiling_rps"])  # no inference fact, no ceiling
    assert pd.notna(summary.loc["extra-svc", "difference_pct"])
    assert any("extra-svc" in n and "neither" in n for n in run.notes)


def test_optional_files_missing_are_skipped(tmp_path: Path) -> None:
    rd = make_bare_run(tmp_path)
    summary = tables.build_summary(rd)
    assert summary["ceiling_rps"].isna().all() and summary["size_mb"].isna().all()
    assert summary[["rps", "p99_s", "difference_pct", "n", "errors"]].notna().all().all()
    assert summary["overhead_ms"].isna().all()  # no in-process time without ceiling.csv
    run = reader.load_run(rd)
    assert any("stages.csv" in n for n in run.notes)
    assert any("services.csv is missing" in n for n in run.notes)


@pytest.mark.parametrize("missing", ["metadata.json", "loadtests.csv", "requests.csv.gz"])
def test_essential_file_missing_fails_clearly(run_dir: Path, tmp_path: Path, missing: str) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / missing).unlink()
    with pytest.raises(reader.RunDataError, match=re.escape(missing)):
        tables.build_summary(copy)


@pytest.mark.parametrize(
    ("server_cpus", "cores"), [("0", 1), ("0-2,5", 4), ([1, 0], 2), (3, 1), (None, 1)]
)
def test_server_cores_from_any_cpu_list(run_dir: Path, server_cpus: object, cores: int) -> None:
    run = reader.load_run(run_dir)
    pinning = {**run.pinning, "server_cpus": server_cpus}  # None: workers x threads = 1
    moved = reader.Run(**{**run.__dict__, "metadata": {**run.metadata, "pinning": pinning}})
    assert moved.server_cores == cores


def test_thresholds_come_from_the_run(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["parameters"]["unstable_pct"] = 99
    (copy / "metadata.json").write_text(json.dumps(meta))
    run = reader.load_run(copy)
    assert run.unstable_pct == 99 and run.latency_bounds_s == pytest.approx([0.05, 0.1, 0.25])
    meta["parameters"]["openloop_bound_ms"] = 100  # one number, as before issue 20
    (copy / "metadata.json").write_text(json.dumps(meta))
    assert reader.load_run(copy).latency_bounds_s == pytest.approx([0.1])
    assert tables.unstable_configs(run).empty
    assert not tables.unstable_configs(run_dir).empty
    assert set(tables.metadata_tables(run)) >= {"run", "machine", "pinning", "parameters"}
