"""The run's general tables as the report prints them: headed in words, numbers rounded for
reading, flags as yes/no, no index (the analysis modules' own tables have their ``shown``
beside them; these are :mod:`servebench.analysis.tables`' and the run's files'). Only what
is displayed changes: the CSV files keep their columns (docs/DATA.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from servebench.analysis import ratios
from servebench.rundir.reader import Run

#: summary.csv's columns in words, as the report's transposed summary heads its rows.
SUMMARY_WORDS = {
    "n": "requests in the seed's table",
    "errors": "errors",
    "total_s": "total (s)",
    "slowest_s": "slowest (s)",
    "fastest_s": "fastest (s)",
    "average_s": "average (s)",
    "table_rps": "the seed's table: req/s",
    "rps": "req/s (median of rounds)",
    "rps_min": "req/s, slowest round",
    "rps_max": "req/s, fastest round",
    "p50_s": "p50 (s)",
    "p90_s": "p90 (s)",
    "p99_s": "p99 (s)",
    "p999_s": "p99.9 (s)",
    "difference_pct": "difference to the baseline (%)",
    "variant_factor": "÷ fp32",
    "ratio": "÷ baseline",
    "ratio_ci_low": "÷ baseline, 95 % CI low",
    "ratio_ci_high": "÷ baseline, 95 % CI high",
    "variant_factor_ci_low": "÷ fp32, 95 % CI low",
    "variant_factor_ci_high": "÷ fp32, 95 % CI high",
    "converged": "converged",
    "rounds": "rounds",
    "spread_pct": "spread of rounds (%)",
    "unstable": "unstable",
    "ceiling_rps": "in-process ceiling (req/s)",
    "efficiency": "÷ in-process ceiling",
    "efficiency_ci_low": "÷ ceiling, 95 % CI low",
    "efficiency_ci_high": "÷ ceiling, 95 % CI high",
    "overhead_ms": "serving overhead (ms)",
    "cpu_s_per_req": "server CPU per request (s)",
    "peak_rss_mb": "peak memory (MB)",
    "cold_start_s": "cold start (s)",
    "size_mb": "size (MB)",
}


def summary(run: Run, summary: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """summary.csv as the report prints it: one titled table per variant (a column per
    service, a row per measure headed in words; one table of every unit runs past the page),
    numbers to four significant digits, flags as yes/no."""
    rows = [c for c in SUMMARY_WORDS if c in summary]
    shown = []
    for variant in run.variants_in_order():
        mine = summary[summary["variant"].astype(str) == variant]
        if mine.empty:
            continue
        grid = pd.DataFrame(
            {str(r["label"]): [_readable(r[c]) for c in rows] for _, r in mine.iterrows()},
            index=pd.Index([SUMMARY_WORDS[c] for c in rows]),
        )
        shown.append((variant, grid))
    return shown


def _readable(value: Any) -> str:
    """One cell of a mixed column: four significant digits, flags as yes/no, '' for NaN."""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        return "" if math.isnan(value) else f"{value:.4g}"
    return "" if pd.isna(value) else str(value)


def by_payload(grid: pd.DataFrame) -> pd.DataFrame:
    """:func:`servebench.analysis.tables.by_payload` as the report prints it: the unit as a
    column, no index, one decimal."""
    view = grid.round(1).reset_index()
    view.columns = ["service", *(str(c) for c in grid.columns)]
    return view


def unstable(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`servebench.analysis.tables.unstable_configs` as the report prints it: headed
    in words, no index."""
    return pd.DataFrame(
        {
            "service": table["service"].map(run.label),
            "model": table["variant"],
            "payload": table["payload"],
            "clients": table["concurrency"],
            "rounds": table["rounds"],
            "req/s": table["rps"].round(1),
            "slowest round, req/s": table["rps_min"].round(1),
            "fastest round, req/s": table["rps_max"].round(1),
            "req/s spread, %": table["spread_pct"].round(1),
            "p99 spread, %": table["p99_spread_pct"].round(1),
        }
    )


def ceilings(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`servebench.analysis.tables.ceilings` as the report prints it: headed in
    words, µs as ms, no index."""
    return pd.DataFrame(
        {
            "in-process loop": table["impl"],
            "model": table["variant"],
            "payload": table["payload"],
            "iterations": table["iterations"],
            "tokenization ms": (table["tokenization_us"] / 1e3).round(3),
            "inference ms": (table["inference_us"] / 1e3).round(3),
            "total ms": (table["total_us"] / 1e3).round(3),
            "server cores": table["server_cores"],
            "ceiling, req/s": table["ceiling_rps"].round(1),
        }
    ).reset_index(drop=True)


def parity(run: Run, parity: pd.DataFrame) -> pd.DataFrame:
    """parity.csv per service, variant and check as the report prints it: sentences
    checked, how many matched, the largest score difference."""
    ok = parity["ok"].astype(str).str.lower().isin(["true", "1"])
    grouped = (
        parity.assign(ok=ok)
        .groupby(["service", "variant", "check"], sort=False)
        .agg(sentences=("ok", "size"), ok=("ok", "sum"), diff=("abs_diff", "max"))
        .reset_index()
    )
    return pd.DataFrame(
        {
            "service": grouped["service"].map(run.label),
            "model": grouped["variant"],
            "check": grouped["check"],
            "sentences": grouped["sentences"],
            "matching": grouped["ok"],
            "largest score difference": grouped["diff"].map(lambda d: f"{d:.2g}"),
        }
    )


def facts(run: Run) -> pd.DataFrame:
    """services.csv's facts as the report prints them: the service's id beside its label,
    headed in words, flags as yes/no; the colour and the order are the figures' and the
    tables' business (the rows are in that order)."""
    facts = run.facts.drop(columns=["color", "order"], errors="ignore").reset_index()
    for column in ("batching", "control", "rung"):
        if column in facts:
            facts[column] = facts[column].map(ratios.yes_no)
    return facts.rename(columns={"step_from": "ladder step from", "rung": "ladder rung"})


def soak(run: Run, soak: pd.DataFrame) -> pd.DataFrame:
    """soak.csv as the report prints it: headed in words, memory to whole MB, no index."""
    return pd.DataFrame(
        {
            "service": soak["service"].map(run.label),
            "model": soak["variant"],
            "seconds": soak["duration_s"],
            "clients": soak["concurrency"],
            "requests": soak["requests"],
            "non-2xx answers": soak["non_2xx"],
            "memory warm, MB": soak["rss_warm_mb"].round(0),
            "memory at the end, MB": soak["rss_end_mb"].round(0),
            "memory growth, ×": soak["rss_growth"].round(3),
        }
    ).reset_index(drop=True)
