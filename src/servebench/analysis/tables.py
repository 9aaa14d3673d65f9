"""The report's tables, computed from a run's raw rows (column meanings: docs/DATA.md).

* :func:`per_run` - one row per hey run (hey's table recomputed, percentiles, resources).
* :func:`per_config` - service x variant x payload x concurrency medians with spreads
  (``per_config.csv``).
* :func:`build_summary` - one row per service x variant at the seed payload and
  concurrency (``summary.csv``).
* :func:`ratios` - every paired ratio at every point (``ratios.csv``,
  :mod:`servebench.analysis.ratios`).
* :func:`ceilings` (per inference kind x variant x payload), :func:`by_payload`,
  :func:`unstable_configs`, :func:`metadata_tables` - the other tables the report shows;
  the per-unit look-ups the summary uses live in :mod:`servebench.analysis.measures`.

Every table is keyed by (service, variant): a service serving one model variant is one
unit of measurement, and each unit is compared with its baseline *in the same variant*.

How rounds are combined (one rule everywhere): every statistic (hey's Total, Slowest,
Fastest, Average, Requests/sec, the latency percentiles, CPU per request) is computed per
hey run (one burst: one unit's share of one round) from that run's raw rows, and the report
gives the median across rounds; Requests/sec and p99 also carry min, max, spread and a
bootstrap interval. Comparisons between units are paired instead: each round's ratio,
summarised by their geometric mean and t interval (:func:`ratios`); the ``rounds`` columns
count the rounds.
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

from servebench.analysis import measures, stats
from servebench.analysis import ratios as paired_ratios
from servebench.analysis.measures import ceiling_for, openloop_payload
from servebench.rundir.reader import BASE_VARIANT, Run, load_run

__all__ = [
    "SUMMARY_COLUMNS", "build_summary", "by_payload", "ceiling_for", "ceilings", "metadata_tables",
    "openloop_payload", "per_config", "per_run", "ratios", "seed_runs", "unstable_configs",
]  # fmt: skip

SUMMARY_COLUMNS: list[str] = [
    "service",
    "variant",
    "label",
    "n",
    "errors",
    "total_s",
    "slowest_s",
    "fastest_s",
    "average_s",
    "table_rps",
    "rps",
    "rps_min",
    "rps_max",
    "p50_s",
    "p90_s",
    "p99_s",
    "p999_s",
    "difference_pct",
    "variant_factor",
    "ratio",
    "ratio_ci_low",
    "ratio_ci_high",
    "variant_factor_ci_low",
    "variant_factor_ci_high",
    "converged",
    "rounds",
    "spread_pct",
    "unstable",
    "ceiling_rps",
    "efficiency",
    "efficiency_ci_low",
    "efficiency_ci_high",
    "overhead_ms",
    "cpu_s_per_req",
    "peak_rss_mb",
    "cold_start_s",
    "size_mb",
]
#: summary.csv columns empty by design in some rows: the interval of a ratio of a unit to
#: itself (a baseline's ``ratio``, fp32's ``variant_factor``) or of one round, and
#: ``converged`` in a run without points.csv (it records no target reached).
MAY_BE_EMPTY = (
    "ratio_ci_low", "ratio_ci_high", "variant_factor_ci_low", "variant_factor_ci_high",
    "converged",
)  # fmt: skip
HEY_TABLE = ("total_s", "slowest_s", "fastest_s", "average_s")
KEY = ["service", "variant", "payload", "concurrency", "round"]
CONFIG = ["service", "variant", "payload", "concurrency"]


def per_run(run: Run | str | Path) -> pd.DataFrame:
    """One row per hey run: hey's table recomputed from the raw rows, percentiles, resources.

    ``total_s`` is hey's Total from loadtests.csv; ``rps`` = answers / Total (hey's
    definition); ``errors`` = max(non-2xx answers + requests missing from the CSV,
    loadtests.csv ``errors``), so an error is never under-counted.
    """
    run = load_run(run)
    return run.cached("per_run", lambda: _per_run(run, run.loadtests))


def control_runs(run: Run | str | Path) -> pd.DataFrame:
    """:func:`per_run` of the A/A control's hey runs (``run.controls``); empty without one."""
    return _aside(load_run(run), "controls")


def rung_runs(run: Run | str | Path) -> pd.DataFrame:
    """:func:`per_run` of the ladder's rungs' hey runs (``run.rungs``); empty without any."""
    return _aside(load_run(run), "rungs")


def _aside(run: Run, name: str) -> pd.DataFrame:
    """:func:`per_run` of the hey runs the reader keeps aside as ``run.<name>``."""
    frame = getattr(run, name)
    if frame is None:
        return pd.DataFrame(columns=[*KEY, "rps"])
    return run.cached(f"{name}_runs", lambda: _per_run(run, frame))


def seed_runs(run: Run | str | Path) -> pd.DataFrame:
    """:func:`per_run` of the seed table's full ``hey -n n_requests`` runs (loadtests.csv
    ``seed_table``); for a run written before they were separate, of its seed point's rounds
    (every one of them such a run then)."""
    run = load_run(run)
    if run.seed_table_bursts is None:
        pr = per_run(run)
        at_seed = (pr["payload"] == run.seed_payload) & (pr["concurrency"] == run.seed_concurrency)
        return pr[at_seed].reset_index(drop=True)
    table = run.seed_table_bursts
    return run.cached("seed_runs", lambda: _per_run(run, table))


def _per_run(run: Run, loadtests: pd.DataFrame) -> pd.DataFrame:
    groups = {k: g for k, g in run.requests.groupby(KEY, sort=False)}
    rows = []
    for lt in loadtests.itertuples(index=False):
        key = tuple(getattr(lt, k) for k in KEY)
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
    every = [run.loadtests]
    every += [f for f in (run.controls, run.rungs, run.seed_table_bursts) if f is not None]
    extra = set(groups) - set(pd.concat(every)[KEY].itertuples(index=False, name=None))
    if extra and loadtests is run.loadtests:
        run.note(f"{len(extra)} hey run(s) in requests.csv.gz have no loadtests.csv row; ignored")
    return pd.DataFrame(rows)


def per_config(run: Run | str | Path, write: bool = False) -> pd.DataFrame:
    """service x variant x payload x concurrency: medians across rounds with spreads.

    Columns: ``service``, ``variant``, ``payload``, ``concurrency``, ``label`` (the
    service's), the hey-table medians
    (``total_s`` ... ``average_s``), ``rps`` (median), ``rps_min``/``rps_max``/
    ``rps_ci_low``/``rps_ci_high`` (95 % bootstrap interval of the median), ``spread_pct``
    and ``unstable`` (of rps), ``p50_s``...``p999_s`` (medians), ``p99_min_s``/
    ``p99_max_s``/``p99_spread_pct``, ``errors`` (sum over rounds), ``n`` (requests of
    one round), ``rounds``, ``cpu_s_per_req`` (median), ``peak_rss_mb`` (max), ``ratio``/
    ``ratio_ci_low``/``ratio_ci_high`` (the paired ratio to the service's baseline at the
    point, :func:`servebench.analysis.ratios.baseline_columns`). Rows in display order.
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
        rps = stats.aggregate_rounds(g["rps"], threshold_pct=run.unstable_pct)
        p99 = stats.aggregate_rounds(g["p99_s"], threshold_pct=run.unstable_pct)
        row: dict[str, Any] = dict(zip(CONFIG, key, strict=True))
        row.update(
            label=run.label(key[0]),
            rounds=int(g["round"].nunique()),
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
    frame = run.in_display_order(pd.DataFrame(rows), CONFIG)
    return frame.join(paired_ratios.baseline_columns(run, frame, ratios(run)))


def ratios(run: Run | str | Path, write: bool = False) -> pd.DataFrame:
    """Every paired ratio at every point (``ratios.csv``; columns
    :data:`servebench.analysis.ratios.COLUMNS`, meanings in docs/DATA.md), from the hey runs'
    Requests/sec. Writes ``ratios.csv`` into the run directory when ``write``."""
    run = load_run(run)
    df = run.cached("ratios", lambda: paired_ratios.compute(run, _with_controls(run)))
    if write:
        df.to_csv(run.path / "ratios.csv", index=False)
    return df


def _with_controls(run: Run) -> pd.DataFrame:
    """Every hey run, the A/A control's and the rungs' included (their tables are
    ratios.csv and the ladder's)."""
    aside = [f for f in (control_runs(run), rung_runs(run)) if len(f)]
    return pd.concat([per_run(run), *aside], ignore_index=True) if aside else per_run(run)


def ceilings(run: Run | str | Path) -> pd.DataFrame:
    """impl x variant x payload: in-process medians (us) and ``ceiling_rps`` for the server's
    cores (:func:`servebench.analysis.measures.ceilings`). Empty when ceiling.csv is missing."""
    return measures.ceilings(load_run(run))


def build_summary(run_dir: str | Path | Run, write: bool = True) -> pd.DataFrame:
    """One row per service x variant at the seed payload and concurrency (columns: DATA.md).

    * The seed's table: ``n``, ``total_s``, ``slowest_s``, ``fastest_s``, ``average_s``,
      ``table_rps``: of the seed table's full ``hey -n n_requests`` runs (the median when
      there are several; :func:`seed_runs`).
    * ``errors``: non-2xx + lost requests, summed over the paired rounds; ``rps``,
      ``p50_s``... ``p999_s``: median across the paired rounds; ``rps_min``/``rps_max``:
      their extremes; ``rounds``: how many there were.
    * ``difference_pct``: Requests/sec vs the service's own ``baseline`` (services.csv)
      serving the same variant, ``(rps - rps_baseline) / rps_baseline * 100`` (seed
      convention); 0 for a baseline itself, NaN when its baseline was not measured. The
      seed's per-metric view: :func:`servebench.analysis.seed.seed_table`.
    * ``variant_factor``: the paired ratio to the same service's fp32 (the ``variant`` kind
      of :func:`ratios`), else rps / its fp32 rps (1.0 for fp32; NaN without it);
      ``variant_factor_ci_low``/``_high``: its 95 % interval (NaN for fp32 and below 2 rounds).
    * ``ratio``/``ratio_ci_low``/``ratio_ci_high``: the paired ratio to the baseline
      (per_config's); ``converged``: :func:`servebench.analysis.ratios.unit_converged`.
    * ``spread_pct``/``unstable``: of rps across rounds (threshold ``run.unstable_pct``).
    * ``ceiling_rps``: :func:`servebench.analysis.stats.ceiling_rps` of the in-process loop
      named by the service's ``inference`` fact on the same variant (:func:`ceiling_for`) at
      the seed payload, times the number of server CPUs; ``efficiency``: the service ÷ that
      loop paired per round (the ``efficiency`` kind of :func:`ratios`) with its interval
      ``efficiency_ci_low``/``_high``, or, for a run that timed the loops apart from its
      rounds, rps / ceiling_rps without one.
    * ``overhead_ms``: median latency at concurrency 1 (seed payload) minus the in-process
      median total of the same loop and variant.
    * ``cpu_s_per_req``: median of rounds; ``peak_rss_mb``: max of rounds;
      ``cold_start_s``: median of the unit's starts (coldstarts.csv); ``size_mb``:
      services.csv (the service's, whatever the variant).

    Rows by service display order, then variant (fp32 first). Writes ``summary.csv``,
    ``per_config.csv`` and ``ratios.csv`` into the run directory when ``write``.
    """
    run = load_run(run_dir)
    pc = per_config(run, write=write)
    seed = pc[(pc["payload"] == run.seed_payload) & (pc["concurrency"] == run.seed_concurrency)]
    seed_rps = seed.set_index(["service", "variant"])["rps"].to_dict()
    seed_ratios = paired_ratios.at_point(
        ratios(run, write=write), run.seed_payload, run.seed_concurrency
    )
    by_variant = paired_ratios.estimates(seed_ratios, "variant", per_point=False)
    by_loop = paired_ratios.estimates(seed_ratios, "efficiency", per_point=False)
    # The seed's own columns (hey's n, Total, Slowest, Fastest, Average, Requests/sec) from
    # its full runs; every other column from the paired rounds.
    full = seed_runs(run).rename(columns={"rps": "table_rps"})
    full = full.groupby(["service", "variant"])[["n", *HEY_TABLE, "table_rps"]].median()
    rows = []
    for r in seed.itertuples(index=False):
        ceiling, inproc_us = ceiling_for(run, r.service, r.variant)
        base_rps = seed_rps.get((run.baseline(r.service) or r.service, r.variant), math.nan)
        row = {c: getattr(r, c) for c in SUMMARY_COLUMNS if hasattr(r, c)}
        if (r.service, r.variant) in full.index:
            row.update(full.loc[(r.service, r.variant)].to_dict())
        c1 = measures.latency_c1(run, pc, r.service, r.variant)
        factor = stats.ratio(r.rps, seed_rps.get((r.service, BASE_VARIANT), math.nan))
        low = high = math.nan
        if (r.service, r.variant) in by_variant.index:
            factor, low, high = by_variant.loc[
                (r.service, r.variant), paired_ratios.INTERVAL_COLUMNS
            ]
        row.update(
            difference_pct=stats.difference_pct(r.rps, base_rps),
            variant_factor=float(factor),
            variant_factor_ci_low=float(low),
            variant_factor_ci_high=float(high),
            converged=paired_ratios.unit_converged(run, seed_ratios, r.service, r.variant),
            ceiling_rps=ceiling,
            **_efficiency(by_loop, r.service, r.variant, stats.efficiency(r.rps, ceiling)),
            overhead_ms=stats.overhead_ms(c1, inproc_us),
            cold_start_s=measures.cold_start(run, r.service, r.variant),
            size_mb=measures.service_measure(run, r.service, "size_mb"),
        )
        rows.append(row)
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if write:
        summary.to_csv(run.path / "summary.csv", index=False)
    return summary


def _efficiency(
    by_loop: pd.DataFrame, service: str, variant: str, pooled: float
) -> dict[str, float]:
    """The efficiency paired per round with its interval where the run timed the loops in
    its rounds, else the pooled ratio (rps ÷ ceiling_rps) without one."""
    if (service, variant) not in by_loop.index:
        return {"efficiency": pooled, "efficiency_ci_low": math.nan, "efficiency_ci_high": math.nan}
    ratio, low, high = by_loop.loc[(service, variant), paired_ratios.INTERVAL_COLUMNS]
    return {"efficiency": ratio, "efficiency_ci_low": low, "efficiency_ci_high": high}


def payload_concurrency(run: Run | str | Path) -> int:
    """The concurrency at which the payloads are compared: the highest level at which every
    payload was measured (the study measures the other payloads at ``payload_levels``, a
    cross through the seed point); the seed's when no level has them all."""
    run = load_run(run)
    pc = per_config(run)
    pc = pc[pc["payload"] != "mixed"]
    payloads = set(pc["payload"])
    complete = [int(c) for c, g in pc.groupby("concurrency") if set(g["payload"]) == payloads]
    return max(complete) if complete else run.seed_concurrency


def by_payload(run: Run | str | Path, column: str, concurrency: int | None = None) -> pd.DataFrame:
    """One per_config column as a grid: a row per service and variant (its label, e.g.
    "Python · int8"), a column per payload, at ``concurrency`` (default:
    :func:`payload_concurrency`)."""
    run = load_run(run)
    pc = per_config(run)
    at = pc[pc["concurrency"] == (payload_concurrency(run) if concurrency is None else concurrency)]
    units = run.units_in_order(at)
    grid = at.set_index(["service", "variant", "payload"])[column].unstack("payload")
    grid = grid.reindex(
        index=pd.MultiIndex.from_tuples(units), columns=run.payloads_in_order(at["payload"])
    )
    grid.index = pd.Index([run.unit_label(s, v) for s, v in units], name="service")
    grid.columns.name = "payload"
    return grid


def unstable_configs(run: Run | str | Path) -> pd.DataFrame:
    """Configurations whose Requests/sec rounds spread more than the run's threshold."""
    pc = per_config(load_run(run))
    cols = [*CONFIG, "rounds", "rps", "rps_min", "rps_max"]
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
