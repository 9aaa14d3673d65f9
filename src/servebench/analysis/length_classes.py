"""Latency per length class on the mixed workload (issue 18).

The mixed workload gives every request its own text: mostly one sentence, some paragraphs, a
few long reviews. A batched service queues and pads them together, so a long text can hold
up the short ones behind it, which one percentile over all requests hides. Here each request
is classed by its text's token count (workload.csv ``tokens``, after truncation) and each
class gets its own percentiles, a batched service's beside its twin's.

* :func:`length_class` - a token count's class (bounds :data:`SHORT_BELOW`, :data:`LONG_FROM`).
* :func:`classified` - the mixed requests, each with its text's tokens and class.
* :func:`class_latencies` - per service, variant, concurrency and class: requests, errors,
  p50/p90/p99 (ms).
* :func:`with_twins` - a batched service's rows with its twin's p99 and the ratio.
* :func:`length_class_table` - the three on a run (``length_classes.csv``);
  :func:`shown` - that table as the report prints it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from servebench import loadrun
from servebench.analysis import batching, stats
from servebench.analysis.tables import KEY
from servebench.paths import MIXED
from servebench.rundir.reader import Run

#: A text of fewer tokens is short; of at least :data:`LONG_FROM`, long; medium between.
SHORT_BELOW = 32
LONG_FROM = 256
#: The classes, shortest first (the order of every table and figure).
CLASSES = ("short", "medium", "long")
#: The percentiles each class gets (the study's, by the stem of their column).
PERCENTILES = {k: stats.PERCENTILES[k] for k in ("p50", "p90", "p99")}
GROUP = ["service", "variant", "concurrency", "length_class"]
#: :func:`class_latencies`' columns; length_classes.csv's are :data:`COLUMNS` (docs/DATA.md).
LATENCY_COLUMNS = [*GROUP, "requests", "errors", *(f"{k}_ms" for k in PERCENTILES)]
COLUMNS = [*LATENCY_COLUMNS, "twin", "twin_p99_ms", "p99_vs_twin"]


def length_class(tokens: ArrayLike) -> np.ndarray:
    """Each token count's class: ``short`` below :data:`SHORT_BELOW`, ``long`` from
    :data:`LONG_FROM`, ``medium`` between."""
    counts = np.asarray(tokens, dtype=float)
    return np.select([counts < SHORT_BELOW, counts < LONG_FROM], CLASSES[:2], CLASSES[2])


def described(name: str) -> str:
    """A class with its bounds, as tables and figures head it: 'short (< 32 tokens)'."""
    return {
        "short": f"short (< {SHORT_BELOW} tokens)",
        "medium": f"medium ({SHORT_BELOW}–{LONG_FROM - 1} tokens)",
        "long": f"long (≥ {LONG_FROM} tokens)",
    }[name]


def classified(requests: pd.DataFrame, workload: pd.DataFrame) -> pd.DataFrame:
    """``requests``' mixed-workload rows with their text's ``tokens`` (workload.csv, by
    ``seq``) and ``length_class``. A request whose ``seq`` the workload lacks has no length
    to class it by and is left out."""
    mixed = requests[requests["payload"] == MIXED]
    lengths = workload[["seq", "tokens"]].astype({"seq": int})
    rows = mixed.dropna(subset=["seq"]).astype({"seq": int}).merge(lengths, on="seq")
    return rows.assign(length_class=length_class(rows["tokens"]))


def class_latencies(rows: pd.DataFrame) -> pd.DataFrame:
    """Per service, variant, concurrency and length class of :func:`classified` rows:
    ``requests`` (the 2xx answers), ``errors`` (the rest, counted apart) and the answers'
    ``p50_ms``, ``p90_ms``, ``p99_ms`` (:func:`servebench.analysis.stats.percentile`,
    numpy's linear method).

    The percentiles pool every round's requests of the point, unlike per_config.csv's
    (medians of each round's): one burst holds a few long texts only, whose p99 alone would
    be their slowest. Classes shortest first; a class without requests has no row."""
    failed = loadrun.is_error_status(rows["status_code"])
    rows = rows.assign(failed=failed)
    out = []
    for key, group in rows.groupby(GROUP, sort=False):
        answered = group.loc[~group["failed"], "response_time_s"].to_numpy(float)
        row = dict(zip(GROUP, key, strict=True))
        row.update(requests=answered.size, errors=int(group["failed"].sum()))
        row.update({f"{k}_ms": stats.percentile(answered, q) * 1e3 for k, q in PERCENTILES.items()})
        out.append(row)
    frame = pd.DataFrame(out, columns=LATENCY_COLUMNS)
    rank = {c: i for i, c in enumerate(CLASSES)}
    return frame.sort_values("length_class", key=lambda c: c.map(rank), kind="stable")


def with_twins(table: pd.DataFrame, twins: dict[str, str]) -> pd.DataFrame:
    """``table`` (:func:`class_latencies`) with, for each batched service of ``twins``
    (batched service: its unbatched twin), the ``twin``, the twin's ``twin_p99_ms`` at the
    same variant, concurrency and class, and ``p99_vs_twin`` (below 1: the batched service's
    tail is shorter); empty for the other services and where the twin was not measured."""
    p99 = table.set_index(GROUP)["p99_ms"]
    twin = table["service"].map(twins).fillna("")
    keys = zip(twin, table["variant"], table["concurrency"], table["length_class"], strict=True)
    twin_p99 = [p99.get(key, math.nan) if key[0] else math.nan for key in keys]
    out = table.assign(twin=twin, twin_p99_ms=twin_p99)
    return out.assign(p99_vs_twin=out["p99_ms"] / out["twin_p99_ms"]).reindex(columns=COLUMNS)


def length_class_table(run: Run, write: bool = False) -> pd.DataFrame:
    """:func:`with_twins` of :func:`class_latencies` of the run's mixed workload (columns
    :data:`COLUMNS`, meanings in docs/DATA.md), in display order; empty for a run without
    one. Only the bursts of ``run.loadtests`` count: the A/A control's and the ladder's
    rungs' (which the reader keeps aside) are left out, as from every other table. Writes
    ``length_classes.csv`` into the run directory when ``write``."""
    table = run.cached("length_classes", lambda: _table(run))
    if write:
        table.to_csv(Path(run.path) / "length_classes.csv", index=False)
    return table


def _table(run: Run) -> pd.DataFrame:
    bursts = run.loadtests.loc[run.loadtests["payload"] == MIXED, KEY].drop_duplicates()
    if bursts.empty or run.workload is None:
        return pd.DataFrame(columns=COLUMNS)
    requests = run.requests.merge(bursts, on=KEY)
    twins = {s: str(run.fact(s, "twin")) for s in batching.batched_services(run)}
    table = with_twins(class_latencies(classified(requests, run.workload)), twins)
    return run.in_display_order(table, ["service", "variant", "concurrency"])


def shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`length_class_table` as the report prints it: headed in words, no index, ms to
    one decimal, the ratio to two."""
    view = pd.DataFrame(
        {
            "service": table["service"].map(run.label),
            "model": table["variant"],
            "clients": table["concurrency"],
            "text length": table["length_class"].map(described),
            "requests": table["requests"],
            "errors": table["errors"],
            "p50 ms": table["p50_ms"].round(1),
            "p90 ms": table["p90_ms"].round(1),
            "p99 ms": table["p99_ms"].round(1),
            "twin's p99 ms": table["twin_p99_ms"].round(1),
            "p99 ÷ twin's": table["p99_vs_twin"].round(2),
        }
    )
    return view.reset_index(drop=True)
