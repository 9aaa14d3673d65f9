"""The mixed workload's in-process limits (issue 18): what a batched service's queue allows on
the workload's own texts without HTTP, and how much of it each service delivers.

replay.csv holds one row per pass of a batched service's replay (measure/inprocess.py): the
workload's texts through the service's own queue, scheduler and runs, in process, at one client
(every text alone: the batch-1 limit) and at the point's concurrency (the batched limit), timed
in the mixed point's rounds beside the services. Per batched service, variant and mixed point:

* ``batch1_items_per_s``, ``batched_items_per_s`` - each replay's items/s, the median of its
  rounds;
* ``queue_gain`` - batched ÷ batch-1 limit, paired per round (ratios.csv ``queue_batching``):
  what batching gives on this workload without HTTP;
* ``rps`` - the service's requests/sec there (per_config.csv: the median of its rounds);
* ``of_batched_limit`` - the service ÷ its batched limit (ratios ``queue_efficiency``);
* ``of_batch1_limit`` - the service ÷ the batch-1 limit (ratios ``efficiency``);
* ``twin``, ``twin_rps``, ``twin_of_batch1_limit`` - its unbatched twin, held against the same
  batch-1 limit (the twin computes what the replay at one client computes, one text at a time);
* ``vs_twin`` - batched ÷ twin, paired per round (ratios.csv ``batching``), whole bursts;
* ``steady_vs_twin`` - the same on steady req/s (:func:`steady_bursts`), and each side's
  ``drain_share``, ``twin_drain_share``: how much of a burst its drain took.

A closed-loop burst keeps every client busy until its last request is sent; then the clients
run out of work one by one. Through that drain a batched server's runs shrink with its queue,
an unbatched one's work per request does not change, so whole-burst req/s understates batching
by how much of the burst the drain takes: the steady req/s counts only the answers completed by
the last send, over the time to it. The replays' passes include the same drain as the bursts
they are held against, so the efficiencies compare like with like.

Each ratio comes with its 95 % interval (``*_ci_low``, ``*_ci_high``); NaN where the run has no
such pair. :func:`mixed_limits` writes ``mixed_limits.csv`` (docs/DATA.md), :func:`shown` is the
report's view of it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from servebench import loadrun
from servebench.analysis import batching, inprocess, paired, ratios, tables
from servebench.paths import MIXED
from servebench.rundir.reader import Run

#: The ratios this table states: its column stem -> (ratios.csv kind, whose ratio).
RATIOS = {
    "queue_gain": "queue_batching",
    "of_batched_limit": "queue_efficiency",
    "of_batch1_limit": "efficiency",
    "twin_of_batch1_limit": "efficiency",
    "vs_twin": "batching",
}
COLUMNS = [
    "service", "variant", "concurrency", "batch1_items_per_s", "batched_items_per_s",
    "queue_gain", "queue_gain_ci_low", "queue_gain_ci_high", "rps",
    "of_batched_limit", "of_batched_limit_ci_low", "of_batched_limit_ci_high",
    "of_batch1_limit", "of_batch1_limit_ci_low", "of_batch1_limit_ci_high",
    "twin", "twin_rps",
    "twin_of_batch1_limit", "twin_of_batch1_limit_ci_low", "twin_of_batch1_limit_ci_high",
    "vs_twin", "vs_twin_ci_low", "vs_twin_ci_high",
    "steady_vs_twin", "steady_vs_twin_ci_low", "steady_vs_twin_ci_high",
    "drain_share", "twin_drain_share",
]  # fmt: skip
STEADY_COLUMNS = ["service", "variant", "payload", "concurrency", "round", "rps", "drain_share"]


def steady_bursts(requests: pd.DataFrame) -> pd.DataFrame:
    """Per mixed-workload burst (service, variant, payload, concurrency, round): ``rps``, the
    answers completed by the burst's last send ÷ the time from its first send to its last
    (the whole burst's rate where nothing completed by then: every request sent at once), and
    ``drain_share``, the part of the burst's time after its last send."""
    mixed = requests[requests["payload"] == MIXED]
    rows = []
    for key, burst in mixed.groupby(STEADY_COLUMNS[:5], sort=False):
        sent = burst["offset_s"].to_numpy(float)
        done = sent + burst["response_time_s"].to_numpy(float)
        answered = ~loadrun.is_error_status(burst["status_code"])
        last_send, end = float(sent.max()), float(done.max())
        steady = int((answered & (done <= last_send)).sum())
        rps = steady / last_send if steady and last_send > 0 else answered.sum() / end
        drain = (end - last_send) / end if end > 0 else math.nan
        rows.append(dict(zip(STEADY_COLUMNS, [*key, rps, drain], strict=True)))
    return pd.DataFrame(rows, columns=STEADY_COLUMNS)


def replay_limits(run: Run) -> pd.DataFrame:
    """Per replay unit (its ratios name), variant and mixed point: the median over rounds of
    its bursts' items/s (``rps``)."""
    bursts = inprocess.replay_bursts(run.replay)
    if bursts.empty:
        return bursts.assign(concurrency=pd.Series(dtype=int))
    keys = ["service", "variant", "payload", "concurrency"]
    return bursts.groupby(keys, sort=False)["rps"].median().reset_index()


def mixed_limits(run: Run, write: bool = False) -> pd.DataFrame:
    """The table (columns :data:`COLUMNS`), in display order; empty for a run without
    replays. Writes ``mixed_limits.csv`` into the run directory when ``write``."""
    table = run.cached("mixed_limits", lambda: _table(run))
    if write:
        table.to_csv(Path(run.path) / "mixed_limits.csv", index=False)
    return table


def _interval(found: pd.DataFrame, key: tuple[Any, ...], stem: str) -> dict[str, float]:
    if key in found.index:
        row = found.loc[key]
        return {
            stem: float(row["ratio"]),
            f"{stem}_ci_low": float(row["ratio_ci_low"]),
            f"{stem}_ci_high": float(row["ratio_ci_high"]),
        }
    return dict.fromkeys([stem, f"{stem}_ci_low", f"{stem}_ci_high"], math.nan)


def _steady_ratios(run: Run, steady: pd.DataFrame) -> pd.DataFrame:
    """Each batched service ÷ its twin on steady req/s, paired per round, by (service,
    variant, payload, concurrency)."""
    twins = {s: str(run.fact(s, "twin")) for s in batching.batched_services(run)}
    compared = [
        paired.Comparison("batching", (s, v), (twins[s], v))
        for s, v in set(zip(steady["service"], steady["variant"], strict=True))
        if s in twins
    ]
    found = paired.ratio_table(steady.drop(columns="drain_share"), compared, math.inf)
    return found.set_index(["service", "variant", "payload", "concurrency"])


def _table(run: Run) -> pd.DataFrame:
    limits = replay_limits(run)
    if limits.empty:
        return pd.DataFrame(columns=COLUMNS)
    steady = steady_bursts(run.requests)
    drains = steady.groupby(["service", "variant", "payload", "concurrency"])["drain_share"]
    drain = drains.median()
    steady_found = _steady_ratios(run, steady)
    limit = limits.set_index(["service", "variant", "payload", "concurrency"])["rps"]
    table = tables.ratios(run)
    # Indexed by (unit, versus unit, variant, payload, concurrency): the ratios of one pair.
    found = table[table["kind"].isin(set(RATIOS.values()))].set_index(
        ["service", "versus_service", "variant", "payload", "concurrency"]
    )
    pc = tables.per_config(run).set_index(["service", "variant", "payload", "concurrency"])
    rows = []
    for service in batching.batched_services(run):
        twin = str(run.fact(service, "twin"))
        one_id = inprocess.replay_id(service, 1)
        for (unit, variant, payload, concurrency), _ in limit.items():
            if unit != one_id or payload != MIXED:
                continue
            c = int(concurrency)
            many_id = inprocess.replay_id(service, c)
            at = (variant, MIXED, c)
            row: dict[str, Any] = {
                "service": service,
                "variant": variant,
                "concurrency": c,
                "batch1_items_per_s": float(limit[(one_id, *at)]),
                "batched_items_per_s": float(limit.get((many_id, *at), math.nan)),
                "rps": float(pc.at[(service, *at), "rps"])
                if (service, *at) in pc.index
                else math.nan,
                "twin": twin,
                "twin_rps": float(pc.at[(twin, *at), "rps"])
                if (twin, *at) in pc.index
                else math.nan,
            }
            row |= _interval(found, (many_id, one_id, *at), "queue_gain")
            row |= _interval(found, (service, many_id, *at), "of_batched_limit")
            row |= _interval(found, (service, one_id, *at), "of_batch1_limit")
            row |= _interval(found, (twin, one_id, *at), "twin_of_batch1_limit")
            row |= _interval(found, (service, twin, *at), "vs_twin")
            row |= _interval(steady_found, (service, *at), "steady_vs_twin")
            row["drain_share"] = float(drain.get((service, *at), math.nan))
            row["twin_drain_share"] = float(drain.get((twin, *at), math.nan))
            rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return run.in_display_order(frame, ["service", "variant", "concurrency"])


def shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`mixed_limits` as the report prints it: headed in words, items/s and req/s to
    whole numbers, each ratio with its interval."""

    def ratio(stem: str) -> list[str]:
        return [
            ratios.formatted(r[stem], r[f"{stem}_ci_low"], r[f"{stem}_ci_high"])
            for _, r in table.iterrows()
        ]

    view = pd.DataFrame(
        {
            "batched service": table["service"].map(run.label),
            "model": table["variant"],
            "clients": table["concurrency"],
            "limit, one at a time (texts/s)": table["batch1_items_per_s"].round(0),
            "limit, batched (texts/s)": table["batched_items_per_s"].round(0),
            "batching gain in process": ratio("queue_gain"),
            "req/s over HTTP": table["rps"].round(0),
            "÷ batched limit": ratio("of_batched_limit"),
            "twin": table["twin"].map(run.label),
            "twin req/s": table["twin_rps"].round(0),
            "twin ÷ one-at-a-time limit": ratio("twin_of_batch1_limit"),
            "÷ twin, whole bursts": ratio("vs_twin"),
            "÷ twin, steady": ratio("steady_vs_twin"),
            "drain, % of burst": (table["drain_share"] * 100).round(0),
            "twin's drain, %": (table["twin_drain_share"] * 100).round(0),
        }
    )
    return view.reset_index(drop=True)
