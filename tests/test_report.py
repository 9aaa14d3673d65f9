"""servebench.report / compare on a synthetic run directory built per docs/DATA.md."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import make_run_dir

from servebench import compare, report, stats

ROOT = Path(__file__).resolve().parents[1]
SERVICES = [
    "python",
    "rust-ffi-debug",
    "rust-ffi-release",
    "rust-native-debug",
    "rust-native-release",
]
PAYLOADS = ["seed", "short", "medium", "long"]
CONCURRENCIES = [1, 8, 50]


def data_md_summary_columns() -> list[str]:
    """The summary.csv columns as docs/DATA.md lists them."""
    for line in (ROOT / "docs" / "DATA.md").read_text().splitlines():
        if line.startswith("| `summary.csv`"):
            last = line.strip().strip("|").split("|")[-1].strip().strip("`")
            return [c.strip() for c in last.split(",")]
    raise AssertionError("DATA.md has no summary.csv row")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_dir(
        tmp_path_factory.mktemp("runs"),
        n=120,
        services=SERVICES,
        payloads=PAYLOADS,
        concurrencies=CONCURRENCIES,
    )


@pytest.fixture(scope="module")
def summary(run_dir: Path) -> pd.DataFrame:
    return report.build_summary(run_dir)


def test_summary_columns_exactly_as_data_md(run_dir: Path, summary: pd.DataFrame) -> None:
    expected = data_md_summary_columns()
    assert list(summary.columns) == expected
    on_disk = pd.read_csv(run_dir / "summary.csv")
    assert list(on_disk.columns) == expected
    assert list(on_disk["service"]) == SERVICES  # fixed order, python first
    assert summary[expected].notna().all().all(), summary.isna().sum()


def test_per_config_written(run_dir: Path, summary: pd.DataFrame) -> None:
    pc = pd.read_csv(run_dir / "per_config.csv")
    assert len(pc) == len(SERVICES) * len(PAYLOADS) * len(CONCURRENCIES)
    assert pc["repeats"].eq(3).all()
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
    md = json.loads((run_dir / "metadata.json").read_text())
    seed = req[(req["payload"] == "seed") & (req["concurrency"] == 50)]
    rows = summary.set_index("service")
    for service in SERVICES:
        runs = lt[
            (lt["service"] == service) & (lt["payload"] == "seed") & (lt["concurrency"] == 50)
        ].set_index("repeat")
        per = seed[seed["service"] == service].groupby("repeat")
        rps = per.size() / runs["total_s"]
        p99 = per["response_time_s"].quantile(0.99)
        slowest = per["response_time_s"].max()
        assert rows.loc[service, "rps"] == pytest.approx(rps.median())
        assert rows.loc[service, "rps_min"] == pytest.approx(rps.min())
        assert rows.loc[service, "p99_s"] == pytest.approx(p99.median())
        assert rows.loc[service, "slowest_s"] == pytest.approx(slowest.median())
        assert rows.loc[service, "total_s"] == pytest.approx(runs["total_s"].median())
        assert rows.loc[service, "n"] == runs["n"].iloc[0]
        assert rows.loc[service, "spread_pct"] == pytest.approx(
            (rps.max() - rps.min()) / rps.median() * 100
        )
        impl = "rust" if service.startswith("rust-native") else "python"
        total_us = ce[(ce["impl"] == impl) & (ce["payload"] == "seed")]["total_us"].median()
        cores = len(stats.parse_cpu_list(md["pinning"]["server_cpus"]))
        assert rows.loc[service, "ceiling_rps"] == pytest.approx(1e6 / total_us * cores)
        assert rows.loc[service, "efficiency"] == pytest.approx(
            rps.median() / (1e6 / total_us * cores)
        )
        c1 = (
            req[
                (req["service"] == service) & (req["payload"] == "seed") & (req["concurrency"] == 1)
            ]
            .groupby("repeat")["response_time_s"]
            .median()
        )
        assert rows.loc[service, "overhead_ms"] == pytest.approx(c1.median() * 1e3 - total_us / 1e3)
    base = rows.loc["python", "rps"]
    for service in SERVICES:
        assert rows.loc[service, "difference_pct"] == pytest.approx(
            (rows.loc[service, "rps"] - base) / base * 100
        )
    assert bool(rows.loc["rust-ffi-debug", "unstable"])  # the builder slowed one repeat 30 %
    assert not bool(rows.loc["python", "unstable"])


def test_seed_views(summary: pd.DataFrame) -> None:
    table = report.seed_table(summary)
    assert list(table.index) == list(report.SEED_ROWS)
    assert "Python" in table.columns and "Rust native release" in table.columns
    assert any(c.startswith("Difference %") for c in table.columns)
    diffs = report.difference_table(summary)
    assert list(diffs.columns) == list(summary["label"].iloc[1:])
    comp = report.seed_comparison(summary)
    pub = report.SEED_PUBLISHED["rows"]
    assert comp.loc["Requests/sec", "seed ratio Rust Release ÷ Python"] == pytest.approx(
        pub["Requests/sec"]["Rust Release"] / pub["Requests/sec"]["Python"]
    )
    s = summary.set_index("service")
    assert comp.loc["Total", "ours Rust Release (PyO3) ÷ Python"] == pytest.approx(
        s.loc["rust-ffi-release", "total_s"] / s.loc["python", "total_s"]
    )


def test_all_figures_written(run_dir: Path, tmp_path: Path) -> None:
    run = report.load_run(run_dir)
    out = [tmp_path / "figs", run_dir / "figures"]
    made = report.make_figures(run, out)
    assert set(made) == set(report.FIGURE_FUNCTIONS)
    for name, path in made.items():
        assert path is not None, name
        for d in out:
            f = d / f"{name}.png"
            assert f.is_file() and f.stat().st_size > 10_000, f


def test_optional_files_missing_are_skipped(tmp_path: Path) -> None:
    rd = make_run_dir(
        tmp_path,
        n=60,
        services=["python", "rust-native-release", "extra-svc"],
        payloads=["seed"],
        concurrencies=[1, 50],
        optional=(),
    )
    with pytest.warns(UserWarning):
        made = report.make_figures(rd, tmp_path / "figs")
    assert made["decomposition"] is None and made["openloop"] is None
    assert made["histograms"] is not None and made["resources"] is not None
    summary = report.build_summary(rd)
    assert summary["ceiling_rps"].isna().all() and summary["size_mb"].isna().all()
    assert summary[["rps", "p99_s", "difference_pct", "n", "errors"]].notna().all().all()
    assert summary["overhead_ms"].isna().all()  # no in-process time without ceiling.csv
    run = report.load_run(rd)
    assert any("stages.csv" in n for n in run.notes)
    colors = report.service_colors(["python", "extra-svc", "other"])
    assert colors["python"] == report.SERVICE_COLORS["python"]
    assert len({colors["extra-svc"], colors["other"], colors["python"]}) == 3


@pytest.mark.parametrize("missing", ["metadata.json", "loadtests.csv", "requests.csv.gz"])
def test_essential_file_missing_fails_clearly(run_dir: Path, tmp_path: Path, missing: str) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / missing).unlink()
    with pytest.raises(report.RunDataError, match=re.escape(missing)):
        report.build_summary(copy)


def test_compare_runs(run_dir: Path, tmp_path: Path) -> None:
    other = make_run_dir(
        tmp_path, n=120, seed=99, services=SERVICES[:3], payloads=["seed"], concurrencies=[1, 50]
    )
    table = compare.compare_runs(run_dir, other)
    assert list(table["service"]) == SERVICES
    a = report.build_summary(run_dir, write=False).set_index("service")
    b = report.build_summary(other, write=False).set_index("service")
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


@pytest.mark.slow
@pytest.mark.e2e
def test_report_notebook_runs(run_dir: Path, tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager

    if "servebench" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("kernel 'servebench' not registered")
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "03_report.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters={"run_dir": str(run_dir), "figures_dir": str(tmp_path / "figures")},
        kernel_name="servebench",
        cwd=str(ROOT),
        progress_bar=False,
    )
    assert (tmp_path / "figures" / "rps_bars.png").is_file()
    assert (run_dir / "figures" / "histograms.png").is_file()
