"""Build a synthetic but complete run directory, following docs/DATA.md exactly.

Used by the report tests and to try the report notebook without a real benchmark:

    .venv/bin/python tests/rundata.py /tmp/fake-run [REGISTRY.yaml]

The services and their facts come from the service registry (the default one, or
``SERVEBENCH_REGISTRY``, or the file given), so a new service shows up here without an
edit. The numbers are made up (a simple closed-loop queueing model with noise); they only
have to look like real runs, not to be realistic.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servebench import paths, registry

PAYLOAD_FACTOR = {"seed": 1.0, "short": 0.7, "medium": 1.6, "long": 4.0}
REQUEST_COLUMNS = [
    "service",
    "payload",
    "concurrency",
    "repeat",
    "response_time_s",
    "dns_dialup_s",
    "dns_s",
    "request_write_s",
    "response_delay_s",
    "response_read_s",
    "status_code",
    "offset_s",
]
OPTIONAL = ("services", "parity", "stages", "ceiling", "openloop", "soak", "hey")
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


def service_facts(registry_file: Path | None = None) -> dict[str, dict[str, Any]]:
    """services.csv's facts of every registered service (registry.Service.facts())."""
    services = registry.load_registry(registry_file) if registry_file else registry.load_registry()
    return {name: service.facts() for name, service in services.items()}


#: The project's own services (service/registry.yaml), whichever registry the suite selects.
PROJECT_SERVICES = list(service_facts(paths.SERVICE / "registry.yaml"))


def work_s(facts: dict[str, Any] | None) -> float:
    """Made-up seconds of work per request at the seed payload: later services are faster."""
    return 0.020 * 0.9 ** int(facts["order"]) if facts else 0.015


def make_run_dir(
    root: Path,
    *,
    services: Sequence[str] | None = None,
    registry_file: Path | None = None,
    payloads: Sequence[str] = ("seed", "short", "medium", "long"),
    concurrencies: Sequence[int] = (1, 8, 50),
    repeats: int = 3,
    n: int = 200,
    seed: int = 7,
    optional: Sequence[str] = OPTIONAL,
    unstable_service: str | None = "rust-ffi-debug",
    error_run: tuple[str, str, int, int] | None = ("rust-native-debug", "short", 8, 1),
) -> Path:
    """Write a run directory under ``root`` and return its path.

    ``services`` defaults to every service of the registry (``registry_file``, else the
    default one); a name the registry lacks gets made-up numbers and no facts.
    ``optional`` names the optional files to write (all by default). ``unstable_service``
    gets one slow repeat at the seed configuration (spread > 10 %); ``error_run``
    (service, payload, concurrency, repeat) gets a few 500 answers and one lost request.
    """
    known = service_facts(registry_file)
    services = list(known) if services is None else list(services)
    work = {s: work_s(known.get(s)) for s in services}
    rng = np.random.default_rng(seed)
    run_id = "20260101-120000-minilm-sentiment-test"
    run = Path(root) / run_id
    run.mkdir(parents=True, exist_ok=True)
    server_cpus, loadgen_cpus = "0", "1"

    metadata = {
        "run_id": run_id,
        "status": "complete",
        "started": "2026-01-01T12:00:00+00:00",
        "finished": "2026-01-01T12:40:00+00:00",
        "parameters": {
            "model_id": "test/minilm-sentiment",
            "payload": "seed",
            "payloads": list(payloads),
            "concurrency": 50 if 50 in concurrencies else max(concurrencies),
            "concurrency_levels": list(concurrencies),
            "repeats": repeats,
            "n_requests": n,
            "server_cpus": "0",
            "loadgen_cpus": "1",
            "threads": 1,
            "workers": 1,
            "openloop": True,
            "openloop_bound_ms": 100,
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
        (s, p, c, r)
        for s in services
        for p in payloads
        for c in concurrencies
        for r in range(repeats)
    ]
    order = rng.permutation(len(combos))
    for k, (service, payload, c, r) in enumerate(combos):
        t = work[service] * PAYLOAD_FACTOR.get(payload, 1.0) * (1 + rng.normal(0, 0.02))
        if service == unstable_service and payload == "seed" and c == max(concurrencies) and r == 0:
            t *= 1.3
        lat = c * t * rng.lognormal(0, 0.12, n) if c > 1 else t * rng.lognormal(0, 0.05, n)
        lat[: min(c, n)] = t * rng.uniform(0.8, 1.2, min(c, n)) * np.arange(1, min(c, n) + 1)
        total = n * t * (1 + abs(rng.normal(0, 0.01)))
        offsets = np.sort(rng.uniform(0, max(total - lat.max(), 1e-3), n))
        status = np.full(n, 200)
        rows = n
        if error_run == (service, payload, c, r):
            status[5:8] = 500
            rows = n - 1  # one request lost at the connection level: not in hey's CSV
        write = rng.uniform(5e-6, 2e-5, n)
        read = rng.uniform(5e-6, 2e-5, n)
        df = pd.DataFrame(
            {
                "service": service,
                "payload": payload,
                "concurrency": c,
                "repeat": r,
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
        requests.append(df[REQUEST_COLUMNS])
        cpu = total * rng.uniform(0.85, 0.98)
        errors = int((status[:rows] >= 300).sum()) + (n - rows)
        loadtests.append(
            {
                "service": service,
                "payload": payload,
                "concurrency": c,
                "repeat": r,
                "order": int(order[k]),
                "n": n,
                "errors": errors,
                "total_s": total,
                "rps": rows / total,
                "cpu_s": cpu,
                "cpu_s_per_req": cpu / n,
                # A Python interpreter in the process costs memory.
                "peak_rss_mb": 300 + 50 * rng.random()
                if known.get(service, {}).get("inference", "python") == "python"
                else 120 + 20 * rng.random(),
                "rss_after_mb": 290.0,
                "started": f"2026-01-01T12:{k % 60:02d}:00+00:00",
            }
        )
    pd.concat(requests).to_csv(run / "requests.csv.gz", index=False)
    pd.DataFrame(loadtests).to_csv(run / "loadtests.csv", index=False)

    if "services" in optional:
        pd.DataFrame(
            [
                {
                    **known.get(s, {"service": s, "label": s}),
                    "cold_start_s": float(rng.uniform(0.5, 4.0)),
                    "size_mb": float(rng.uniform(5, 900)),
                    "binary": f"service/{s}",
                }
                for s in services
            ]
        ).to_csv(run / "services.csv", index=False)

    if "parity" in optional:
        pd.DataFrame(
            [
                {
                    "service": s,
                    "sentence_id": i,
                    "kind": kind,
                    "label": "POSITIVE",
                    "score": 0.99,
                    "expected_label": "POSITIVE",
                    "expected_score": 0.99,
                    "abs_diff": 1e-7,
                    "ok": True,
                }
                for s in services
                for i, kind in enumerate(("short", "long", "truncated"))
            ]
        ).to_csv(run / "parity.csv", index=False)

    if "stages" in optional:
        rows_st = []
        for s in services:
            for p in payloads:
                us = work[s] * PAYLOAD_FACTOR.get(p, 1.0) * 1e6
                for r in range(repeats):
                    for _ in range(30):
                        tok = 0.15 * us * rng.lognormal(0, 0.1)
                        inf = 0.75 * us * rng.lognormal(0, 0.1)
                        handler = tok + inf + 0.1 * us * rng.lognormal(0, 0.1)
                        rows_st.append(
                            {
                                "service": s,
                                "payload": p,
                                "repeat": r,
                                "client_us": handler + rng.uniform(300, 900),
                                "tokenization_us": tok,
                                "inference_us": inf,
                                "handler_us": handler,
                            }
                        )
        pd.DataFrame(rows_st).to_csv(run / "stages.csv", index=False)

    if "ceiling" in optional:
        rows_c = []
        for i, impl in enumerate(registry.INFERENCE_KINDS):
            w = 0.017 / 2**i
            for p in payloads:
                for it in range(100):
                    tok = 0.15 * w * PAYLOAD_FACTOR.get(p, 1.0) * 1e6 * rng.lognormal(0, 0.05)
                    inf = 0.8 * w * PAYLOAD_FACTOR.get(p, 1.0) * 1e6 * rng.lognormal(0, 0.05)
                    rows_c.append(
                        {
                            "repeat": it % 2,
                            "impl": impl,
                            "payload": p,
                            "iteration": it,
                            "tokenization_us": tok,
                            "inference_us": inf,
                            "total_us": tok + inf,
                        }
                    )
        pd.DataFrame(rows_c).to_csv(run / "ceiling.csv", index=False)

    if "openloop" in optional:
        rows_o = []
        for s in services:
            cap = 1 / work[s]
            for rate in (10, 20, 30, 40, 50, 60, 80, 100, 120):
                load = rate / cap
                p50 = work[s] / max(1 - min(load, 0.98), 0.02)
                p99 = p50 * (3 if load < 1 else 30)
                rows_o.append(
                    {
                        "service": s,
                        "payload": "seed",
                        "rate": rate,
                        "duration_s": 30,
                        "requests": rate * 30,
                        "success": 1.0 if load < 1.1 else 0.9,
                        "throughput": min(rate, cap),
                        "p50_s": p50,
                        "p90_s": p50 * 2,
                        "p99_s": p99,
                        "max_s": p99 * 1.5,
                        "meets_bound": bool(p99 <= 0.1 and load < 1.1),
                    }
                )
        pd.DataFrame(rows_o).to_csv(run / "openloop.csv", index=False)

    if "soak" in optional:
        pd.DataFrame(
            [
                {
                    "service": s,
                    "duration_s": 300,
                    "concurrency": 8,
                    "requests": 20000,
                    "non_2xx": 0,
                    "rss_warm_mb": 200.0,
                    "rss_end_mb": 201.0,
                    "rss_growth": 0.005,
                }
                for s in services
            ]
        ).to_csv(run / "soak.csv", index=False)

    if "hey" in optional:
        (run / "hey").mkdir(exist_ok=True)
        for s, p, c, r in combos[:3]:
            (run / "hey" / f"{s}__{p}__c{c}__r{r}.txt").write_text("Summary:\n  (synthetic)\n")
    return run


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
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python tests/rundata.py OUT_DIR [REGISTRY.yaml]")
    registry_file = Path(sys.argv[2]) if len(sys.argv) == 3 else None
    print(make_run_dir(Path(sys.argv[1]), registry_file=registry_file))
