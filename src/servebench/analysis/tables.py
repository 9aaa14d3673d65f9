"""The report's tables, computed from a run's raw rows (column meanings: docs/DATA.md).

* :func:`per_run` - one row per hey run (hey's table recomputed, percentiles, resources).
* :func:`per_config` - service x payload x concurrency medians with spreads
  (``per_config.csv``).
* :func:`build_summary` - one row per service at the seed payload and concurrency
  (``summary.csv``).
* :func:`ceilings`, :func:`unstable_configs`, :func:`metadata_tables` - the other tables
  the report shows.

How repeats are combined (one rule everywhere): every statistic (hey's Total, Slowest,
Fastest, Average, Requests/sec, the latency percentiles, CPU per request) is computed per
hey run (one repeat) from that run's raw rows, and the report gives the median across
repeats; Requests/sec and p99 also carry min, max, spread and a bootstrap interval.
Latencies include every answer hey recorded (any status), as hey itself does; errors are
counted separately. Every function accepts a :class:`~servebench.rundir.reader.Run` or a
run directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servebench.analysis import stats
from servebench.rundir.reader import Run, load_run

SUMMARY_COLUMNS: list[str] = [
    "service",
    "label",
    "n",
    "errors",
    "total_s",
    "slowest_s",
    "fastest_s",
    "average_s",
    "rps",
    "rps_min",
    "rps_max",
    "p50_s",
    "p90_s",
    "p99_s",
    "p999_s",
    "difference_pct",
    "repeats",
    "spread_pct",
    "unstable",
    "ceiling_rps",
    "efficiency",
    "overhead_ms",
    "cpu_s_per_req",
    "peak_rss_mb",
    "cold_start_s",
    "size_mb",
    "max_rate_under_bound",
]
HEY_TABLE = ("total_s", "slowest_s", "fastest_s", "average_s")
KEY = ["service", "payload", "concurrency", "repeat"]
CONFIG = ["service", "payload", "concurrency"]


def per_run(run: Run | str | Path) -> pd.DataFrame:
    """One row per hey run: hey's table recomputed from the raw rows, percentiles, resources.

    ``total_s`` is hey's Total from loadtests.csv; ``rps`` = answers / Total (hey's
    definition); ``errors`` = max(non-2xx answers + requests missing from the CSV,
    loadtests.csv ``errors``), so an error is never under-counted.
    """
    run = load_run(run)
    return run.cached("per_run", lambda: _per_run(run))


def _per_run(run: Run) -> pd.DataFrame:
    groups = {k: g for k, g in run.requests.groupby(KEY, sort=False)}
    rows = []
    for lt in run.loadtests.itertuples(index=False):
        key = (lt.service, lt.payload, lt.concurrency, lt.repeat)
        req = groups.get(key)
        if req is None:
            req = run.requests.iloc[0:0]
            run.note(f"no request rows for hey run {key}; counted as all errors")
        hey = stats.hey_summary(req, total_s=float(lt.total_s), n_expected=int(lt.n))
        pct = stats.percentiles(req["response_time_s"].to_numpy(float))
        row = dict(zip(KEY, key, strict=True))
        row.update(
            order=getattr(lt, "order", np.nan),
            n=int(lt.n),
            errors=max(hey.errors, int(lt.errors) if not pd.isna(lt.errors) else 0),
            responses=hey.responses,
            **{c: getattr(hey, c) for c in HEY_TABLE},
            rps=hey.rps,
            rps_hey=float(lt.rps),
            **{f"{k}_s": v for k, v in pct.items()},
            cpu_s_per_req=float(lt.cpu_s_per_req),
            peak_rss_mb=float(lt.peak_rss_mb),
        )
        rows.append(row)
    extra = set(groups) - {tuple(r[k] for k in KEY) for r in rows}
    if extra:
        run.note(f"{len(extra)} hey run(s) in requests.csv.gz have no loadtests.csv row; ignored")
    return pd.DataFrame(rows)


def per_config(run: Run | str | Path, write: bool = False) -> pd.DataFrame:
    """service x payload x concurrency: medians across repeats with spreads.

    Columns: ``service``, ``payload``, ``concurrency``, ``label``, the hey-table medians
    (``total_s`` ... ``average_s``), ``rps`` (median), ``rps_min``/``rps_max``/
    ``rps_ci_low``/``rps_ci_high`` (95 % bootstrap interval of the median), ``spread_pct``
    and ``unstable`` (of rps), ``p50_s``...``p999_s`` (medians), ``p99_min_s``/
    ``p99_max_s``/``p99_spread_pct``, ``errors`` (sum over repeats), ``n`` (requests of
    one repeat), ``cpu_s_per_req`` (median), ``peak_rss_mb`` (max). Rows in display order.
    Writes ``per_config.csv`` into the run directory when ``write``.
    """
    run = load_run(run)
    df = run.cached("per_config", lambda: _per_config(run))
    if write:
        df.to_csv(run.path / "per_config.csv", index=False)
    return df


def _per_config(run: Run) -> pd.DataFrame:
    rows = []
    for key, g in per_run(run).groupby(CONFIG, sort=False):
        rps = stats.aggregate_repeats(g["rps"], threshold_pct=run.unstable_pct)
        p99 = stats.aggregate_repeats(g["p99_s"], threshold_pct=run.unstable_pct)
        row: dict[str, Any] = dict(zip(CONFIG, key, strict=True))
        row.update(
            label=run.label(key[0]),
            repeats=int(g["repeat"].nunique()),
            n=int(g["n"].median()),
            errors=int(g["errors"].sum()),
            **{c: float(g[c].median()) for c in HEY_TABLE},
            rps=rps.median,
            rps_min=rps.min,
            rps_max=rps.max,
            rps_ci_low=rps.ci_low,
            rps_ci_high=rps.ci_high,
            spread_pct=rps.spread_pct,
            unstable=rps.unstable,
            **{f"{k}_s": float(g[f"{k}_s"].median()) for k in stats.PERCENTILES},
            p99_min_s=p99.min,
            p99_max_s=p99.max,
            p99_spread_pct=p99.spread_pct,
            cpu_s_per_req=float(g["cpu_s_per_req"].median()),
            peak_rss_mb=float(g["peak_rss_mb"].max()),
        )
        rows.append(row)
    df = pd.DataFrame(rows)
    order = {
        "service": {s: i for i, s in enumerate(run.services_in_order())},
        "payload": {p: i for i, p in enumerate(run.payloads_in_order())},
    }
    df = df.sort_values(
        ["service", "payload", "concurrency"],
        key=lambda c: c.map(order[c.name]) if c.name in order else c,
    )
    return df.reset_index(drop=True)


def ceilings(run: Run | str | Path) -> pd.DataFrame:
    """impl x payload: in-process medians (us) and ``ceiling_rps`` for the server's cores.

    Empty frame when ceiling.csv is missing.
    """
    run = load_run(run)
    cols = ["impl", "payload", "iterations", "tokenization_us", "inference_us", "total_us"]
    cols += ["server_cores", "ceiling_rps"]
    if run.ceiling is None:
        return pd.DataFrame(columns=cols)
    g = run.ceiling.groupby(["impl", "payload"], sort=True)
    df = g[["tokenization_us", "inference_us", "total_us"]].median().reset_index()
    df["iterations"] = g.size().to_numpy()
    df["server_cores"] = run.server_cores
    df["ceiling_rps"] = [stats.ceiling_rps(t, run.server_cores) for t in df["total_us"]]
    return df[cols]


def ceiling_for(run: Run, service: str) -> tuple[float, float]:
    """(ceiling_rps, in-process median total_us) bounding a service at the seed payload.

    The in-process loop is the one named by the service's ``inference`` fact: what runs
    tokenize + ONNX Runtime for it per request.
    """
    ce = ceilings(run)
    impl = run.fact(service, "inference")
    if ce.empty or not impl:  # the reader's notes already say why
        return math.nan, math.nan
    hit = ce[(ce["impl"] == impl) & (ce["payload"] == run.seed_payload)]
    if hit.empty:
        run.note(f"ceiling.csv has no {impl!r} rows for payload {run.seed_payload!r}")
        return math.nan, math.nan
    return float(hit["ceiling_rps"].iloc[0]), float(hit["total_us"].iloc[0])


def _latency_c1(run: Run, service: str) -> float:
    """Median latency (s) at concurrency 1, seed payload: from hey runs, else stages.csv."""
    pc = per_config(run)
    hit = pc[
        (pc["service"] == service) & (pc["payload"] == run.seed_payload) & (pc["concurrency"] == 1)
    ]
    if not hit.empty:
        return float(hit["p50_s"].iloc[0])
    if run.stages is not None:
        st = run.stages[
            (run.stages["service"] == service) & (run.stages["payload"] == run.seed_payload)
        ]
        if not st.empty:
            run.note("no hey run at concurrency 1: overhead_ms uses stages.csv client_us")
            return float(st["client_us"].median()) / 1e6
    run.note(f"no concurrency-1 latency for {service}: overhead_ms is NaN")
    return math.nan


def openloop_payload(run: Run) -> str | None:
    """The payload the open-loop phase attacked with: the seed payload when present."""
    if run.openloop is None or run.openloop.empty:
        return None
    payloads = list(dict.fromkeys(run.openloop["payload"]))
    if run.seed_payload in payloads:
        return run.seed_payload
    run.note(f"openloop.csv has no {run.seed_payload!r} payload; using {payloads[0]!r}")
    return payloads[0]


def _max_rate_under_bound(run: Run, service: str, payload: str | None) -> float:
    if payload is None or run.openloop is None:
        return math.nan
    ol = run.openloop
    return stats.max_rate_under_bound(ol[(ol["service"] == service) & (ol["payload"] == payload)])


def _service_measure(run: Run, service: str, column: str) -> float:
    """A services.csv measurement (cold start, size), NaN when not measured."""
    if run.services is None or column not in run.services:
        return math.nan
    hit = run.services.loc[run.services["service"] == service, column]
    return float(hit.iloc[0]) if len(hit) else math.nan


def build_summary(run_dir: str | Path | Run, write: bool = True) -> pd.DataFrame:
    """One row per service at the seed payload and seed concurrency (columns: DATA.md).

    * ``n``: requests of one repeat; ``errors``: non-2xx + lost requests, summed over repeats.
    * ``total_s``, ``slowest_s``, ``fastest_s``, ``average_s``, ``rps``, ``p50_s``...
      ``p999_s``: median across repeats of each repeat's value; ``rps_min``/``rps_max``:
      extremes of the repeats.
    * ``difference_pct``: Requests/sec vs the service's own ``baseline`` (services.csv),
      ``(rps - rps_baseline) / rps_baseline * 100`` (seed convention); 0 for a baseline
      itself, NaN when its baseline was not measured. The seed's per-metric view:
      :func:`servebench.analysis.seed.seed_table`.
    * ``spread_pct``/``unstable``: of rps across repeats (threshold ``run.unstable_pct``).
    * ``ceiling_rps``: :func:`servebench.analysis.stats.ceiling_rps` of the in-process loop
      named by the service's ``inference`` fact (:func:`ceiling_for`) at the seed payload,
      times the number of server CPUs; ``efficiency`` = rps / ceiling_rps.
    * ``overhead_ms``: median latency at concurrency 1 (seed payload) minus the in-process
      median total of the same loop.
    * ``cpu_s_per_req``: median of repeats; ``peak_rss_mb``: max of repeats;
      ``cold_start_s``, ``size_mb``: services.csv.
    * ``max_rate_under_bound``: highest openloop.csv rate with ``meets_bound`` (seed payload).

    Writes ``summary.csv`` and ``per_config.csv`` into the run directory when ``write``.
    """
    run = load_run(run_dir)
    pc = per_config(run, write=write)
    seed = pc[(pc["payload"] == run.seed_payload) & (pc["concurrency"] == run.seed_concurrency)]
    seed_rps = dict(zip(seed["service"], seed["rps"], strict=True))
    ol_payload = openloop_payload(run)
    rows = []
    for r in seed.itertuples(index=False):
        ceiling, inproc_us = ceiling_for(run, r.service)
        base_rps = seed_rps.get(run.baseline(r.service) or r.service, math.nan)
        row = {c: getattr(r, c) for c in SUMMARY_COLUMNS if hasattr(r, c)}
        row.update(
            difference_pct=stats.difference_pct(r.rps, base_rps),
            ceiling_rps=ceiling,
            efficiency=stats.efficiency(r.rps, ceiling),
            overhead_ms=stats.overhead_ms(_latency_c1(run, r.service), inproc_us),
            max_rate_under_bound=_max_rate_under_bound(run, r.service, ol_payload),
            cold_start_s=_service_measure(run, r.service, "cold_start_s"),
            size_mb=_service_measure(run, r.service, "size_mb"),
        )
        rows.append(row)
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if write:
        summary.to_csv(run.path / "summary.csv", index=False)
    return summary


def unstable_configs(run: Run | str | Path) -> pd.DataFrame:
    """Configurations whose Requests/sec repeats spread more than the run's threshold."""
    pc = per_config(load_run(run))
    cols = ["service", "payload", "concurrency", "repeats", "rps", "rps_min", "rps_max"]
    cols += ["spread_pct", "p99_spread_pct"]
    return pc.loc[pc["unstable"].astype(bool), cols].reset_index(drop=True)


def _two_columns(d: dict[str, Any]) -> pd.DataFrame:
    values = [json.dumps(v) if isinstance(v, dict | list) else v for v in d.values()]
    return pd.DataFrame({"value": values}, index=list(d.keys())).astype(str)


def metadata_tables(run: Run | str | Path) -> dict[str, pd.DataFrame]:
    """metadata.json as small two-column tables: run, machine, pinning, versions, git,
    model, parameters."""
    md = load_run(run).metadata
    out = {"run": _two_columns({k: md.get(k) for k in ("run_id", "status", "started", "finished")})}
    for key in ("machine", "pinning", "versions", "git", "model", "parameters"):
        if isinstance(md.get(key), dict):
            out[key] = _two_columns(md[key])
    return out
