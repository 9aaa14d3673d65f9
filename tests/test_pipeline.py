"""The whole study through papermill (quick configuration), and what a failing run leaves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import pipeline_command

from servebench import paths
from servebench.process import RUN_TAG, tagged_processes

pytestmark = pytest.mark.e2e

SUMMARY_COLUMNS = [
    "service", "variant", "variant_factor", "n", "errors", "total_s", "slowest_s",
    "fastest_s", "average_s", "rps", "p50_s", "p90_s", "p99_s", "efficiency", "overhead_ms",
    "cpu_s_per_req", "peak_rss_mb", "cold_start_s", "size_mb",
]  # fmt: skip


def test_quick_run_produces_report_summary_and_figures(quick_run: Path) -> None:
    assert not (quick_run / "INCOMPLETE").exists()
    meta = json.loads((quick_run / "metadata.json").read_text())
    assert meta["status"] == "complete"
    report = (quick_run / "report.html").read_text()
    assert "Requests/sec" in report and "<img" in report
    figures = list((quick_run / "figures").glob("*.png"))
    assert len(figures) >= 4
    summary = pd.read_csv(quick_run / "summary.csv")
    assert [c for c in SUMMARY_COLUMNS if c not in summary.columns] == []
    aside = controls(quick_run) | rungs(quick_run)
    shown = [s for s in meta["parameters"]["services"] if s not in aside]
    assert controls(quick_run) and rungs(quick_run) and set(summary["service"]) == set(shown)
    params = meta["parameters"]
    assert set(zip(summary["service"], summary["variant"], strict=True)) == units_of(
        quick_run, shown, params["variants"], params["base_variant_only"]
    )
    # The fixture registry's extra service is in every table, with its registry facts.
    assert "python-twin" in set(summary["service"])
    per_config = pd.read_csv(quick_run / "per_config.csv")
    assert set(per_config["service"]) == set(summary["service"])
    services = pd.read_csv(quick_run / "services.csv").set_index("service")
    assert services.loc["python-twin", "label"] == "Python twin"
    assert services.loc["python-twin", "baseline"] == "python"
    assert {"inference", "family", "color", "order"} <= set(services.columns)
    assert (summary["errors"] == 0).all()
    assert (summary["rps"] > 0).all()
    # Only batching can serve more than the batch-1 in-process ceiling allows.
    batched = summary["service"].isin(["python-batched", "rust-native-batched"])
    assert summary.loc[~batched, "efficiency"].between(0, 1.5).all()
    assert summary.loc[batched, "efficiency"].between(0, 3).all()
    # The ladder: each step and the Rust release builds beside it, in ladder.csv, a figure and
    # the report's section.
    ladder = pd.read_csv(quick_run / "ladder.csv")
    assert ladder["service"].iloc[0] == "python" and "python-tuned" in set(ladder["service"])
    assert rungs(quick_run) < set(ladder["service"])
    assert {"rust-native-release", "rust-ffi-release"} < set(ladder["service"])
    assert ladder["rps"].gt(0).all() and ladder["serving_ms"].notna().all()
    assert (quick_run / "figures" / "ladder.png").is_file()
    assert "Where Rust's lead comes from" in report


def controls(run_dir: Path) -> set[str]:
    """The run's A/A controls (services.csv ``control``): fp32 only, no table shows them."""
    services = pd.read_csv(run_dir / "services.csv")
    return set(services.loc[services["control"].astype(bool), "service"])


def rungs(run_dir: Path) -> set[str]:
    """The ladder's rungs (services.csv ``rung``): fp32 at the seed point only, in the
    ladder and the ratios alone."""
    services = pd.read_csv(run_dir / "services.csv")
    return set(services.loc[services["rung"].astype(bool), "service"])


def units_of(
    run_dir: Path, services: list[str], variants: list[str], fp32_only: list[str]
) -> set[tuple[str, str]]:
    """(service, variant) measured: every service with every variant, a control, a rung and
    the services of `base_variant_only` (`fp32_only`) with fp32 only."""
    alone = controls(run_dir) | rungs(run_dir) | set(fp32_only)
    return {(s, v) for s in services for v in variants if v == "fp32" or s not in alone}


def test_quick_run_measures_batching_and_the_mixed_workload(quick_run: Path) -> None:
    meta = json.loads((quick_run / "metadata.json").read_text())
    params = meta["parameters"]
    loadtests = pd.read_csv(quick_run / "loadtests.csv")
    mixed = loadtests[loadtests["payload"] == "mixed"]
    seed_only = set(params["seed_point_only"]) | rungs(quick_run)
    swept = [s for s in params["services"] if s not in seed_only]
    on_mixed = [s for s in swept if s in params["mixed_services"] or not params["mixed_services"]]
    units = units_of(quick_run, on_mixed, params["variants"], params["base_variant_only"])
    assert set(zip(mixed["service"], mixed["variant"], strict=True)) == units
    # A seed-point-only service (a rung too) has the seed point and nothing else.
    only = loadtests[loadtests["service"].isin(seed_only)]
    assert len(only) and set(zip(only["payload"], only["concurrency"], strict=True)) == {
        (params["payload"], params["concurrency"])
    }
    assert set(mixed["concurrency"]) == set(params["mixed_concurrency_levels"])
    assert (mixed["n"] == params["mixed_requests"]).all() and (mixed["errors"] == 0).all()
    requests = pd.read_csv(quick_run / "requests.csv.gz", low_memory=False)
    answers = requests[requests["payload"] == "mixed"]
    # Every answer of the mixed workload is ONNX Runtime's label for its own text (int8 in a
    # batch may flip a borderline one: its batch-mates change the quantization scale)...
    assert answers["correct"].astype(bool).mean() >= 0.98
    assert answers[answers["variant"] == "fp32"]["correct"].astype(bool).all()
    # ... and the batched services batched it under load, never at c=1.
    batched = answers[answers["service"].isin(["python-batched", "rust-native-batched"])]
    top = max(params["mixed_concurrency_levels"])
    assert batched[batched["concurrency"] == top]["batch_size"].max() > 1
    assert (batched[batched["concurrency"] == 1]["batch_size"] == 1).all()
    assert answers[answers["service"] == "python"]["batch_size"].isna().all()
    workload_rows = pd.read_csv(quick_run / "workload.csv")
    assert len(workload_rows) == params["mixed_requests"]
    assert workload_rows["tokens"].max() > 4 * workload_rows["tokens"].median()
    # The batching ceiling: each batched service, each variant and batch size, timed in the
    # seed point's rounds.
    limits = pd.read_csv(quick_run / "batch_ceiling.csv")
    assert set(limits["service"]) == {"python-batched", "rust-native-batched"}
    assert set(limits["batch_size"]) == set(params["batch_sizes"])
    assert set(limits["variant"]) == set(params["variants"])
    assert set(zip(limits["payload"], limits["concurrency"], strict=True)) == {
        (params["payload"], params["concurrency"])
    }
    assert limits["round"].nunique() >= params["min_rounds"]
    # The mixed workload's limits: each batched service's replay at one client and at each
    # mixed level, every variant, in the mixed points' rounds; and the table built on them.
    replay = pd.read_csv(quick_run / "replay.csv")
    assert set(replay["service"]) == {"python-batched", "rust-native-batched"}
    assert set(replay["variant"]) == set(params["variants"])
    assert (replay["payload"] == "mixed").all()
    assert set(replay["clients"]) == {1, *params["mixed_concurrency_levels"]}
    assert (replay["texts"] == params["mixed_requests"]).all() and (replay["total_us"] > 0).all()
    mixed_table = pd.read_csv(quick_run / "mixed_limits.csv")
    assert len(mixed_table) == 2 * len(params["variants"]) * len(params["mixed_concurrency_levels"])
    assert (mixed_table["batched_items_per_s"] > 0).all() and mixed_table["rps"].notna().all()
    kinds = set(pd.read_csv(quick_run / "ratios.csv")["kind"])
    assert {"queue_efficiency", "queue_batching"} <= kinds
    # The core's peak before and after the rounds, the model's arithmetic per request of every
    # variant and payload, and every rate as a share of the peak.
    peak = pd.read_csv(quick_run / "core_peak.csv")
    assert set(peak["when"]) == {"before", "after"} and set(peak["precision"]) == {"fp32", "int8"}
    assert (peak["gop_per_s"] > 0).all() and peak["isa"].notna().all()
    flops = pd.read_csv(quick_run / "flops.csv")
    payloads = {params["payload"], *params["payloads"], "mixed"}
    assert set(zip(flops["variant"], flops["payload"], strict=True)) == {
        (v, p) for v in params["variants"] for p in payloads
    }
    # The same products in every variant: only which kernel runs them differs.
    assert flops.groupby("payload")["flop"].nunique().eq(1).all()
    shares = pd.read_csv(quick_run / "peak_share.csv")
    assert set(shares["where"]) == {
        "in process, batch 1",
        "in process, best batch",
        "over HTTP, seed point",
    }
    assert (shares["peak_share"] > 0).all()
    assert "How close to the hardware" in (quick_run / "report.html").read_text()
    # The open-loop series of every searched unit (on its warm process), the rate under every
    # bound read from them, and what a request and a core kept for a rate cost.
    attacks = pd.read_csv(quick_run / "openloop.csv")
    searched = {(s, v) for s in params["openloop_services"] for v in params["openloop_variants"]}
    assert set(zip(attacks["service"], attacks["variant"], strict=True)) == searched
    assert (
        attacks.groupby(["service", "variant"])["attack"]
        .max()
        .le(params["openloop_max_steps"] - 1)
        .all()
    )
    rates = pd.read_csv(quick_run / "decision.csv")
    assert sorted(rates["bound_ms"].unique()) == sorted(params["openloop_bound_ms"])
    assert len(rates) == len(searched) * len(params["openloop_bound_ms"])
    assert rates["fastest"].sum() == rates.dropna(subset=["rate"])["bound_ms"].nunique() > 0
    bill = pd.read_csv(quick_run / "cost.csv")
    assert len(bill) == len(pd.read_csv(quick_run / "summary.csv"))
    assert (bill["usd_per_million"] > 0).all() and (bill["memory_share"] > 0).all()
    assert "Which stack for which latency bound" in (quick_run / "report.html").read_text()
    # Batched services were checked with every reference sentence sent at once.
    parity = pd.read_csv(quick_run / "parity.csv")
    concurrent = parity[parity["check"] == "concurrent"]
    assert set(concurrent["service"]) == {"python-batched", "rust-native-batched"}
    fp32 = concurrent[concurrent["variant"] == "fp32"]
    assert fp32["ok"].all() and fp32["abs_diff"].max() <= 1e-4
    # int8 in a batch: only the label is compared (and recorded, not enforced).
    assert concurrent[concurrent["variant"] == "int8"]["label"].notna().all()
    assert (quick_run / "figures" / "batching.png").is_file()
    assert (quick_run / "figures" / "batch_ceiling.png").is_file()
    assert "Dynamic batching" in (quick_run / "report.html").read_text()


def test_quick_run_interleaves_the_units_in_counterbalanced_rounds(quick_run: Path) -> None:
    params = json.loads((quick_run / "metadata.json").read_text())["parameters"]
    points = pd.read_csv(quick_run / "points.csv")
    seed = (params["payload"], params["concurrency"])
    assert tuple(points.iloc[0][["payload", "concurrency"]]) == seed  # the headline first
    assert points["rounds"].between(params["min_rounds"], params["max_rounds"]).all()
    assert set(points["stop"]) <= {"converged", "max_rounds", "budget"}
    assert (points["converged"] == (points["stop"] == "converged")).all()
    loadtests = pd.read_csv(quick_run / "loadtests.csv")
    table = loadtests[loadtests["seed_table"]]
    # The seed table: its own rounds of the seed's hey -n at the seed point, every unit, first.
    assert set(zip(table["payload"], table["concurrency"], strict=True)) == {seed}
    assert (
        table["n"] == params["n_requests"] // params["concurrency"] * params["concurrency"]
    ).all()
    assert table["round"].nunique() == params["seed_table_runs"]
    ceiling = pd.read_csv(quick_run / "ceiling.csv")
    for point in points.itertuples():
        at = (loadtests["payload"] == point.payload) & (
            loadtests["concurrency"] == point.concurrency
        )
        bursts = loadtests[at & ~loadtests["seed_table"]].sort_values(["round", "order"])
        assert bursts["round"].nunique() == point.rounds
        assert len(bursts) <= point.units * point.rounds  # units may sit out, never burst twice
        units = bursts["service"] + "·" + bursts["variant"]
        orders = [list(units[bursts["round"] == r]) for r in sorted(bursts["round"].unique())]
        assert all(len(set(o)) == len(o) for o in orders)
        assert sorted(orders[0]) == sorted(orders[1]) and len(orders[0]) == point.units
        for first, second in zip(orders[::2], orders[1::2], strict=False):
            assert second == first[::-1]  # every other round runs the one before in reverse
        if point.payload != "mixed":  # the loops took turns in the same rounds
            loops = ceiling[
                (ceiling["payload"] == point.payload)
                & (ceiling["concurrency"] == point.concurrency)
            ]
            assert point.in_process_units > 0 and set(loops["round"]) <= set(bursts["round"])
            assert set(loops["round"]) & set(bursts["round"])
    # The drift probe: once before the first point, then after every round (the table's too).
    drift = pd.read_csv(quick_run / "drift.csv")
    assert len(drift) == 1 + points["rounds"].sum() + params["seed_table_runs"]
    assert drift["elapsed_s"].is_monotonic_increasing and (drift["probe_us"] > 0).all()
    # Every ratio the report states, with its interval from the paired rounds.
    ratios = pd.read_csv(quick_run / "ratios.csv")
    assert {"control", "baseline", "variant", "batching"} <= set(ratios["kind"])
    assert {"efficiency", "in_process_variant", "batch_size"} <= set(ratios["kind"])
    at_seed = ratios[(ratios["payload"] == seed[0]) & (ratios["concurrency"] == seed[1])]
    assert (at_seed["ratio_ci_low"] <= at_seed["ratio"]).all()
    assert (at_seed["ratio"] <= at_seed["ratio_ci_high"]).all()
    summary = pd.read_csv(quick_run / "summary.csv").set_index(["service", "variant"])
    assert {"ratio", "ratio_ci_low", "ratio_ci_high"} <= set(summary.columns)
    rust = summary.loc[("rust-native-release", "fp32")]
    assert rust["ratio_ci_low"] <= rust["ratio"] <= rust["ratio_ci_high"]
    # Each unit was started once for the rounds, and once more for its soak when its variant
    # is among soak_variants.
    coldstarts = pd.read_csv(quick_run / "coldstarts.csv")
    starts = coldstarts.groupby(["service", "variant"])["start"].agg(list)
    assert set(map(tuple, starts)) <= {(0,), (0, 1)} and starts.loc[("python", "fp32")] == [0, 1]
    twice = {unit for unit, s in starts.items() if s == [0, 1]}
    assert {variant for _, variant in twice} == set(params["soak_variants"])
    soaked = pd.read_csv(quick_run / "soak.csv")
    assert set(soaked["variant"]) == set(params["soak_variants"])
    assert "repeat" not in pd.read_csv(quick_run / "stages.csv")


def test_quick_run_keeps_raw_records_and_metadata(quick_run: Path) -> None:
    requests = pd.read_csv(quick_run / "requests.csv.gz")
    assert {"service", "payload", "concurrency", "round", "response_time_s"} <= set(requests)
    meta = json.loads((quick_run / "metadata.json").read_text())
    for key in ("machine", "versions", "git", "pinning", "parameters"):
        assert meta[key], key
    parity = pd.read_csv(quick_run / "parity.csv")
    sequential = parity[parity["check"] == "sequential"]
    assert sequential["ok"].all() and sequential["abs_diff"].max() <= 1e-4
    # The loops are timed in the rounds: a burst of at least 3 calls per unit and round.
    ceiling = pd.read_csv(quick_run / "ceiling.csv")
    per_burst = ceiling.groupby(["payload", "concurrency", "round", "variant", "impl"]).size()
    assert (per_burst >= 3).all()
    # one loop per inference kind of the run's services (python-tuned's has its own)
    kinds = set(pd.read_csv(quick_run / "services.csv")["inference"])
    assert set(ceiling["impl"]) == kinds and {"python", "rust"} < kinds
    # Every service with every variant (a control fp32 only), each verified against its own
    # variant's model.
    variants = meta["parameters"]["variants"]
    assert set(ceiling["variant"]) == set(variants) == {"fp32", "int8", "int8-static"}
    pairs = set(zip(parity["service"], parity["variant"], strict=True))
    params = meta["parameters"]
    assert pairs == units_of(quick_run, params["services"], variants, params["base_variant_only"])
    faithful = pd.read_csv(quick_run / "variants.csv").set_index("variant")
    assert faithful.loc["int8", "label_agreement"] >= meta["parameters"]["min_label_agreement"]
    assert faithful.loc["int8", "isa"]
    # Batch invariance measured, and the batched services held to it: strict (1e-4) on every
    # invariant variant when all reference sentences are batched together.
    assert not faithful.loc["int8", "batch_invariant"]
    assert (
        faithful.loc["int8-static", "batch_invariant"] and faithful.loc["fp32", "batch_invariant"]
    )
    together = parity[
        (parity["check"] == "concurrent") & parity["variant"].isin(["fp32", "int8-static"])
    ]
    assert set(together["variant"]) == {"fp32", "int8-static"}
    assert together["ok"].all() and together["abs_diff"].max() <= 1e-4


def test_failed_run_is_marked_and_leaves_nothing_running(tmp_path: Path) -> None:
    """Kill the service mid-run: the run fails fast naming it, keeps its data, starts nothing."""
    command = pipeline_command(tmp_path, "services=[python]", "soak_s=30", "openloop=false")
    runner = subprocess.Popen(command, cwd=paths.ROOT, stderr=subprocess.PIPE, text=True)
    victim = wait_for_service(timeout_s=300)
    time.sleep(3)  # let it get into the load test
    os.kill(victim, signal.SIGKILL)
    _, stderr = runner.communicate(timeout=300)
    assert runner.returncode != 0
    assert "python" in stderr and "exited" in stderr
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "INCOMPLETE").exists()
    assert json.loads((run_dir / "metadata.json").read_text())["status"] == "failed"
    assert not (tmp_path / "latest").exists()
    assert tagged_processes(run_dir.name) == []


def test_sigterm_to_the_pipeline_stops_its_services_and_marks_the_run(tmp_path: Path) -> None:
    command = [
        *(sys.executable, "-m", "servebench.pipeline", "--config", "quick"),
        *("--runs-dir", str(tmp_path), "--set", "services=[python]", "--set", "openloop=false"),
    ]
    runner = subprocess.Popen(command, cwd=paths.ROOT, stderr=subprocess.PIPE, text=True)
    wait_for_service(timeout_s=300)
    runner.send_signal(signal.SIGTERM)
    _, stderr = runner.communicate(timeout=60)
    assert runner.returncode != 0, stderr[-2000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert (run_dir / "INCOMPLETE").exists()
    assert json.loads((run_dir / "metadata.json").read_text())["status"] == "failed"
    assert not (tmp_path / "latest").exists()
    assert tagged_processes(run_dir.name) == []


def test_unreachable_hub_model_fails_with_a_clear_message(tmp_path: Path) -> None:
    command = pipeline_command(tmp_path, "model_id=distilbert-base-uncased-finetuned-sst-2-english")
    result = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode != 0
    assert "hub" in result.stderr.lower()
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert tagged_processes(run_dir.name) == []


def pipeline_tag(environ: bytes) -> str | None:
    """The run tag of a process started by a pipeline run (not by this test session)."""
    prefix = f"{RUN_TAG}=".encode()
    for item in environ.split(b"\0"):
        if item.startswith(prefix) and not item[len(prefix) :].startswith(b"pid"):
            return item[len(prefix) :].decode()
    return None


def wait_for_service(timeout_s: float) -> int:
    """The pid of the first pipeline-started Python service (uvicorn running app.py)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            is_app = any(part.endswith(b"app.py") for part in cmdline)
            if is_app and b"taskset" not in cmdline[0] and pipeline_tag(environ):
                return int(entry.name)
        time.sleep(0.2)
    raise AssertionError("no service process appeared")
