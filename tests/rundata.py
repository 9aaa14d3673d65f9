"""Build a synthetic but complete run directory, following docs/DATA.md exactly.

Used by the report tests and to try the report notebook without a real benchmark:

    .venv/bin/python tests/rundata.py /tmp/fake-run [REGISTRY.yaml|-] [fp32,int8]

The services and their facts come from the service registry (the default one, or
``SERVEBENCH_REGISTRY``, or the file given), so a new service shows up here without an
edit. Every service is measured with every model variant (``variants``, fp32 by default);
a quantized variant's inference is faster (``rundata_files.INFERENCE_SPEEDUP``). The
numbers are made up (a simple closed-loop queueing model with noise); they only have to look
like real runs, not to be realistic.
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rundata_files import (
    PAYLOAD_FACTOR,
    WRITERS,
    Burst,
    Shape,
    batch_ceiling_csv,
    coldstarts_csv,
    core_peak_csv,
    drift_csv,
    flops_csv,
    loadtest_row,
    mixed_run,
    points_csv,
    variant_share,
    variants_csv,
)

from servebench import paths, registry
from servebench.rundir.reader import Run, load_run

OPTIONAL = (
    "services", "parity", "stages", "ceiling", "openloop", "soak", "hey", "coldstarts", "variants",
    "batch_ceiling", "points", "drift", "core_peak", "flops",
)  # fmt: skip
#: Tokens per request of each synthetic payload (flops.csv).
TOKENS = {"seed": 15.0, "short": 10.0, "medium": 60.0, "long": 512.0}
#: The rounds' parameters besides min_rounds.
TARGET_CI_PCT, MAX_ROUNDS, POINT_BUDGET_S = 3.0, 12, 240.0
#: The measured files that carry a variant column.
VARIANT_FILES = (
    "loadtests.csv", "requests.csv.gz", "stages.csv", "parity.csv", "coldstarts.csv",
    "openloop.csv", "soak.csv", "ceiling.csv",
)  # fmt: skip
DATA_MD = Path(__file__).resolve().parents[1] / "docs" / "DATA.md"


def data_md_columns(file: str) -> list[str]:
    """The columns docs/DATA.md lists for ``file``: the backticked names of its row's last
    cell, once the parenthesised explanations are removed."""
    for line in DATA_MD.read_text().splitlines():
        if line.startswith(f"| `{file}`"):
            cell = line.strip().strip("|").split("|")[-1]
            while re.search(r"\([^()]*\)", cell):
                cell = re.sub(r"\([^()]*\)", "", cell)
            spans = re.findall(r"`([^`]*)`", cell)
            return [c.strip() for span in spans for c in span.split(",") if c.strip()]
    raise AssertionError(f"docs/DATA.md has no row for {file}")


#: requests.csv.gz's columns; hey runs (all of a synthetic run) leave vegeta's empty.
REQUEST_COLUMNS = data_md_columns("requests.csv.gz")


def service_facts(registry_file: Path | None = None) -> dict[str, dict[str, Any]]:
    """services.csv's facts of every registered service (registry.Service.facts())."""
    services = registry.load_registry(registry_file) if registry_file else registry.load_registry()
    return {name: service.facts() for name, service in services.items()}


#: The project's own services (service/registry.yaml), whichever registry the suite selects.
PROJECT_SERVICES = list(service_facts(paths.SERVICE / "registry.yaml"))
#: Those a report's tables and figures show: all but the A/A control (registry `control`)
#: and the ladder's rungs (`rung`), which only the paired ratios and Stability (and the
#: ladder) show.
SHOWN_SERVICES = [
    name
    for name, facts in service_facts(paths.SERVICE / "registry.yaml").items()
    if not facts["control"] and not facts["rung"]
]
#: The ladder's rungs.
RUNGS = [
    name for name, facts in service_facts(paths.SERVICE / "registry.yaml").items() if facts["rung"]
]
#: The A/A control's name and its baseline's.
CONTROL, CONTROL_BASELINE = next(
    (name, str(facts["baseline"]))
    for name, facts in service_facts(paths.SERVICE / "registry.yaml").items()
    if facts["control"]
)


def work_s(
    facts: dict[str, Any] | None, variant: str = "fp32", baseline: dict[str, Any] | None = None
) -> float:
    """Made-up seconds of work per request at the seed payload: later services are faster,
    and a quantized variant's inference share shrinks by its speed-up; an A/A control works
    as its `baseline` does."""
    if facts and facts.get("control") and baseline:
        facts = baseline
    base = 0.020 * 0.9 ** int(facts["order"]) if facts else 0.015
    return base * variant_share(variant)


def make_run_dir(
    root: Path,
    *,
    services: Sequence[str] | None = None,
    registry_file: Path | None = None,
    payloads: Sequence[str] = ("seed", "short", "medium", "long"),
    concurrencies: Sequence[int] = (1, 8, 50),
    min_rounds: int = 3,
    variants: Sequence[str] = ("fp32",),
    n: int = 200,
    seed: int = 7,
    optional: Sequence[str] = OPTIONAL,
    unstable_service: str | None = "rust-ffi-debug",
    error_run: tuple[str, str, int, int] | None = ("rust-native-debug", "short", 8, 1),
    rounds: dict[tuple[str, int], int] | None = None,
    seed_table: bool = True,
    mixed: Sequence[int] = (),
) -> Path:
    """Write a run directory under ``root`` and return its path.

    ``services`` defaults to every service of the registry (``registry_file``, else the
    default one); a name the registry lacks gets made-up numbers and no facts.
    Every service serves every one of ``variants``. ``optional`` names the optional files
    to write (all by default). ``unstable_service`` gets one slow fp32 round at the seed
    configuration (spread > 10 %); ``error_run`` (service, payload, concurrency, round)
    gets a few 500 answers and one lost request (fp32).

    Every point gets ``min_rounds`` rounds but those ``rounds`` gives ({(payload,
    concurrency): rounds}); points.csv and drift.csv are written when ``points`` and
    ``drift`` are among ``optional``. The seed point also gets one round of the seed table
    (loadtests.csv ``seed_table``) unless ``seed_table`` is False (a run written before it).
    An A/A control (a registry ``control``) serves fp32 alone and works as its baseline; a
    rung of the ladder (registry ``rung``) serves fp32 alone, at the seed point alone,
    without the seed table, as the load test measures it.

    ``mixed`` lists the concurrency levels of the mixed workload (payload ``mixed``, with
    workload.csv; none by default): every unit but the rungs, ``min_rounds`` rounds per level
    unless ``rounds`` gives them, vegeta's rows (``seq``, empty hey phases), a batched
    service's with a batch size; its first batched unit's fp32 burst of round 0 at the first
    level fails a few requests (``rundata_files.MIXED_ERRORS``).
    """
    rounds = rounds or {}
    known = service_facts(registry_file)
    services = list(known) if services is None else list(services)
    control = {s for s in services if known.get(s, {}).get("control")}
    rung = {s for s in services if known.get(s, {}).get("rung")}
    units = [(s, v) for s in services for v in variants if v == "fp32" or s not in control | rung]
    work = {
        (s, v): work_s(known.get(s), v, known.get(str(known.get(s, {}).get("baseline"))))
        for s, v in units
    }
    rng = np.random.default_rng(seed)
    run_id = "20260101-120000-minilm-sentiment-test"
    run = Path(root) / run_id
    run.mkdir(parents=True, exist_ok=True)
    server_cpus, loadgen_cpus = "0", "1"
    seed_c = 50 if 50 in concurrencies else max(concurrencies)

    metadata = {
        "run_id": run_id,
        "status": "complete",
        "started": "2026-01-01T12:00:00+00:00",
        "finished": "2026-01-01T12:40:00+00:00",
        "parameters": {
            "model_id": "test/minilm-sentiment",
            "payload": "seed",
            "payloads": list(payloads),
            "concurrency": seed_c,
            "concurrency_levels": list(concurrencies),
            "min_rounds": min_rounds,
            "max_rounds": max(MAX_ROUNDS, *rounds.values(), min_rounds),
            "target_ci_pct": TARGET_CI_PCT,
            "point_budget_s": POINT_BUDGET_S,
            "n_requests": n,
            "server_cpus": "0",
            "loadgen_cpus": "1",
            "threads": 1,
            "workers": 1,
            "openloop": True,
            "openloop_bound_ms": [50, 100, 250],
            "price_instance": "a synthetic instance",
            "price_usd_per_hour": 0.1,
            "price_cores": 2,
            "price_memory_gib": 4,
            "variants": list(variants),
        },
        "machine": {
            "cpu_model": "Synthetic CPU @ 2.0GHz",
            "cores": 2,
            "memory_gb": 8.0,
            "kernel": "6.1.0-test",
            "hostname": "testhost",
        },
        "pinning": {
            "server_cpus": server_cpus,
            "loadgen_cpus": loadgen_cpus,
            "threads": 1,
            "workers": 1,
            "pinned": True,
        },
        "versions": {
            "python": "3.11.9",
            "rustc": "1.90.0",
            "cargo": "1.90.0",
            "onnxruntime": "1.32.0",
            "transformers": "4.60.0",
            "optimum": "2.0.0",
            "tokenizers": "0.23.1",
            "torch": "2.9.0",
            "fastapi": "0.120.0",
            "uvicorn": "0.38.0",
            "hey": "0.1.4",
            "vegeta": "12.12.0",
        },
        "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False},
        "model": {
            "id": "test/minilm-sentiment",
            "dir": "data/models/test--minilm-sentiment",
            "parity": {"ok": True, "max_abs_diff": 1e-6},
        },
    }
    (run / "metadata.json").write_text(json.dumps(metadata, indent=2))

    requests: list[pd.DataFrame] = []
    loadtests: list[dict] = []
    combos = [
        (s, v, p, c, r)
        for s, v in units
        for p in payloads
        for c in concurrencies
        for r in range(rounds.get((p, c), min_rounds))
        if s not in rung or (p, c) == ("seed", seed_c)
    ]
    order = list(rng.permutation(len(combos)))
    table_round = -1
    if seed_table and "seed" in payloads:
        # The seed table's full hey -n runs: one round, numbered after the paired ones
        # (drawn last, so the paired rounds draw what they drew before it existed).
        table_round = rounds.get(("seed", seed_c), min_rounds)
        table = [(s, v, "seed", seed_c, table_round) for s, v in units if s not in rung]
        order += list(range(len(table)))
        combos += table
    slow = (unstable_service, "fp32", "seed", max(concurrencies), 0)
    for k, (service, variant, payload, c, r) in enumerate(combos):
        t = work[service, variant] * PAYLOAD_FACTOR.get(payload, 1.0) * (1 + rng.normal(0, 0.02))
        if (service, variant, payload, c, r) == slow:
            t *= 1.3
        lat = c * t * rng.lognormal(0, 0.12, n) if c > 1 else t * rng.lognormal(0, 0.05, n)
        lat[: min(c, n)] = t * rng.uniform(0.8, 1.2, min(c, n)) * np.arange(1, min(c, n) + 1)
        total = n * t * (1 + abs(rng.normal(0, 0.01)))
        offsets = np.sort(rng.uniform(0, max(total - lat.max(), 1e-3), n))
        status = np.full(n, 200)
        rows = n
        if error_run == (service, payload, c, r) and variant == "fp32":
            status[5:8] = 500
            rows = n - 1  # one request lost at the connection level: not in hey's CSV
        write = rng.uniform(5e-6, 2e-5, n)
        read = rng.uniform(5e-6, 2e-5, n)
        df = pd.DataFrame(
            {
                "service": service,
                "variant": variant,
                "payload": payload,
                "concurrency": c,
                "round": r,
                "response_time_s": lat,
                "dns_dialup_s": rng.uniform(0, 1e-4, n),
                "dns_s": 0.0,
                "request_write_s": write,
                "response_delay_s": lat - write - read,
                "response_read_s": read,
                "status_code": status,
                "offset_s": offsets,
            }
        )[:rows]
        requests.append(df.reindex(columns=REQUEST_COLUMNS))
        errors = int((status[:rows] >= 300).sum()) + (n - rows)
        burst = Burst(service, variant, payload, c, r, int(order[k]), n, rows, errors, total)
        in_table = (payload, c, r) == ("seed", seed_c, table_round)
        loadtests.append(loadtest_row(burst, known, k, in_table, rng))
    shape = Shape(units, known, list(payloads), work)
    if mixed:  # its own generator, so that every other file draws what it drew before
        bursts = mixed_run(shape, mixed, rounds, min_rounds, np.random.default_rng(seed + 2))
        bursts.workload.to_csv(run / "workload.csv", index=False)
        if not bursts.replay.empty:
            bursts.replay.to_csv(run / "replay.csv", index=False)
        requests += [frame.reindex(columns=REQUEST_COLUMNS) for frame in bursts.requests]
        loadtests += bursts.loadtests
    pd.concat(requests).to_csv(run / "requests.csv.gz", index=False)
    pd.DataFrame(loadtests).to_csv(run / "loadtests.csv", index=False)

    for name, write in WRITERS.items():
        if name in optional:
            write(shape, rng).to_csv(run / f"{name}.csv", index=False)
    if "hey" in optional:
        (run / "hey").mkdir(exist_ok=True)
        for s, v, p, c, r in combos[:3]:
            (run / "hey" / f"{s}__{v}__{p}__c{c}__r{r}.txt").write_text("Summary:\n (synthetic)\n")
    # Last, so that the files above draw the same numbers as before these two existed.
    if "coldstarts" in optional:
        coldstarts_csv(shape, rng).to_csv(run / "coldstarts.csv", index=False)
    if "variants" in optional:
        variants_csv(shape, rng).to_csv(run / "variants.csv", index=False)
    batches = batch_ceiling_csv(shape, rng) if "batch_ceiling" in optional else pd.DataFrame()
    if not batches.empty:
        batches.to_csv(run / "batch_ceiling.csv", index=False)
    if "core_peak" in optional:  # its own generator: the files above draw what they drew
        core_peak_csv(np.random.default_rng(seed + 3)).to_csv(run / "core_peak.csv", index=False)
    if "flops" in optional:
        tokens = {p: TOKENS.get(p, 16.0) for p in payloads} | ({"mixed": 40.0} if mixed else {})
        flops_csv(shape, tokens).to_csv(run / "flops.csv", index=False)
    if "points" in optional:  # its own generator: the files above draw what they drew before
        lt = pd.DataFrame(loadtests)
        limit = int(metadata["parameters"]["max_rounds"])
        points_csv(shape, lt, TARGET_CI_PCT, limit).to_csv(run / "points.csv", index=False)
        if "drift" in optional:
            drift = drift_csv(lt, np.random.default_rng(seed + 1))
            drift.to_csv(run / "drift.csv", index=False)
    return run


#: Today's column -> what an interleaved run wrote before each had one meaning (issue 21),
#: spelled out here rather than taken from servebench.rundir.upgrade, so that a test of the
#: upgrade checks it against an independent account of the old files.
OLD_NAMES = {
    "loadtests.csv": {"round": "repeat"},
    "requests.csv.gz": {"round": "repeat"},
    "drift.csv": {"round": "repeat"},
    "coldstarts.csv": {"start": "repeat"},
    "summary.csv": {"rounds": "repeats"},
    "per_config.csv": {"rounds": "repeats"},
}


def with_old_names(run: Path) -> Path:
    """Rewrite ``run`` (in place) as the load test and report wrote it just before issue 21:
    ``repeat`` for the round, the ceiling's pass and the start number, ``repeats`` for the
    rounds of summary.csv and per_config.csv, and a constant ``repeat`` of 0 in stages.csv."""
    for name, renamed in OLD_NAMES.items():
        path = run / name
        if path.is_file():
            pd.read_csv(path).rename(columns=renamed).to_csv(path, index=False)
    stages = run / "stages.csv"
    if stages.is_file():
        df = pd.read_csv(stages)
        df.insert(list(df.columns).index("payload") + 1, "repeat", 0)
        df.to_csv(stages, index=False)
    return run


def with_loops_in_passes(run: Path) -> Path:
    """Rewrite ``run``'s ceiling.csv and batch_ceiling.csv (in place) as a run timed its loops
    before issue 22: in two passes apart from the rounds, ``repeat`` (as issue 21 found it)
    numbering the pass, no point or round."""
    for name in ("ceiling.csv", "batch_ceiling.csv"):
        path = run / name
        if path.is_file():
            frame = pd.read_csv(path)
            frame = frame.drop(columns=["concurrency", "round", "order"])
            frame.insert(0, "repeat", frame["iteration"] % 2)
            frame.to_csv(path, index=False)
    return run


def make_variant_run(root: Path, **overrides: Any) -> Path:
    """A small run of every service with fp32 and int8, at the seed point and concurrency 1
    (the seed payload and ``short``); ``overrides`` go to :func:`make_run_dir`."""
    defaults: dict[str, Any] = {
        "n": 60, "payloads": ["seed", "short"], "concurrencies": [1, 50],
        "variants": ("fp32", "int8"),
    }  # fmt: skip
    return make_run_dir(root, **{**defaults, **overrides})


def make_bare_run(root: Path) -> Path:
    """A run with the essential files only: two registered services and one that neither
    the registry nor a services.csv describes."""
    return make_run_dir(
        root,
        n=60,
        services=[PROJECT_SERVICES[0], PROJECT_SERVICES[-1], "extra-svc"],
        payloads=["seed"],
        concurrencies=[1, 50],
        optional=(),
    )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3, 4):
        sys.exit("usage: python tests/rundata.py OUT_DIR [REGISTRY.yaml|-] [VARIANT,VARIANT]")
    registry_file = Path(sys.argv[2]) if len(sys.argv) >= 3 and sys.argv[2] != "-" else None
    variants = tuple(sys.argv[3].split(",")) if len(sys.argv) == 4 else ("fp32",)
    print(make_run_dir(Path(sys.argv[1]), registry_file=registry_file, variants=variants))


def quiet_load(run_dir: Path) -> Run:
    """A synthetic run loaded without the reader's warnings (about optional inputs it lacks:
    the same messages are in ``run.notes``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_run(run_dir)
