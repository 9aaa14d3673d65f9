"""The run's paired ratios (``ratios.csv``) and the columns of the report's tables drawn from them.

Every ratio the study states (:data:`servebench.analysis.paired.KINDS`: a service ÷ its
baseline, a variant ÷ fp32, a batched service ÷ its twin) is estimated from the bursts of the
same rounds at each point: the geometric mean of the per-round ratios of Requests/sec, with a
95 % Student-t interval on their logarithms (:func:`servebench.analysis.paired.ratio_table`).

* :func:`compute` - ratios.csv from a run's hey runs (:func:`servebench.analysis.tables.
  per_run`; the cached, written table is :func:`servebench.analysis.tables.ratios`).
* :func:`at_point` - one point's rows; :func:`estimates` - one kind's rows keyed by unit.
* :func:`baseline_columns` - ``ratio``/``ratio_ci_low``/``ratio_ci_high`` for per_config rows.
* :func:`unit_converged` - the summary's ``converged``.
* :func:`formatted` - "1.28× [1.22–1.34]", how a ratio with its interval is printed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from servebench.analysis import inprocess, paired
from servebench.rundir import facts
from servebench.rundir.reader import BASE_VARIANT, Run

#: Every kind of ratio in ratios.csv, in the order the report lists them.
KINDS = (*paired.KINDS, *inprocess.KINDS)
#: What names a point in ratios.csv (its first columns, then paired.RATIO_COLUMNS).
POINT = ["payload", "concurrency"]
COLUMNS = [*POINT, *paired.RATIO_COLUMNS]
#: A ratio with its interval, as ratios.csv, per_config.csv and summary.csv name it.
INTERVAL_COLUMNS = ["ratio", "ratio_ci_low", "ratio_ci_high"]


def comparisons(run: Run, bursts: pd.DataFrame | None = None) -> list[paired.Comparison]:
    """Every ratio among the units (service, variant) of ``bursts`` (default: the hey runs):
    against each service's baseline and twin (services.csv facts) and against fp32; an A/A
    control's against its baseline (kind ``control``)."""
    units = run.units_in_order(bursts)
    services = list(dict.fromkeys(s for s, _ in units))
    baseline = {s: run.baseline(s) for s in services}
    twin = {s: str(run.fact(s, "twin")) for s in services}
    controls = {s for s in services if bool(run.fact(s, "control"))}
    steps = {s: str(run.fact(s, "step_from")) for s in services}
    rungs = {s for s in services if bool(run.fact(s, "rung"))}
    return paired.comparisons(
        units, baseline, twin, BASE_VARIANT, controls=controls, steps=steps, rungs=rungs
    )


def compute(run: Run, per_run: pd.DataFrame) -> pd.DataFrame:
    """ratios.csv: every comparison at every point (columns :data:`COLUMNS`, display order).

    ``per_run`` is one row per hey run with its recomputed ``rps`` (the A/A control's
    included); a burst without a positive rps (every request failed) pairs nothing, and a
    note says so. The precision target is ``parameters.target_ci_pct`` (3 % when the run
    does not record one)."""
    bursts = per_run[["service", "variant", *POINT, "round", "rps"]]
    usable = np.isfinite(bursts["rps"].to_numpy(float)) & (bursts["rps"].to_numpy(float) > 0)
    if not usable.all():
        run.note(f"{int((~usable).sum())} hey run(s) without a positive req/s pair nothing")
    usable_bursts = bursts[usable]
    compared = comparisons(run, usable_bursts)
    limits = in_process_bursts(run)
    if len(limits):
        units = run.units_in_order(usable_bursts)
        keys = units + list(dict.fromkeys(zip(limits["service"], limits["variant"], strict=True)))
        # A control measures the noise and a rung a step of the ladder: neither is held
        # against an in-process limit (registry.Service.bounded).
        bounded = [s for s, _ in units if not (run.fact(s, "rung") or run.fact(s, "control"))]
        inference = {s: str(run.fact(s, "inference")) for s in bounded}
        # The batched service whose replay at one client bounds each inference kind where
        # no loop runs (the mixed workload): the kind's own batched service.
        replayed = {inference[s]: s for s in bounded if run.fact(s, "batching")}
        compared += inprocess.comparisons(
            keys, inference, base_variant=BASE_VARIANT, replayed=replayed
        )
        usable_bursts = pd.concat([usable_bursts, limits], ignore_index=True)
    table = paired.ratio_table(usable_bursts, compared, run.rounds.target_ci_pct)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    table = table.astype({"rounds": int, "converged": bool})
    rank = table["kind"].map({k: i for i, k in enumerate(KINDS)}).rename("kind_rank")
    by = ["kind_rank", "payload", "concurrency", "service", "variant"]
    return run.in_display_order(table.join(rank), by)[COLUMNS]


def in_process_bursts(run: Run) -> pd.DataFrame:
    """The in-process units' bursts (analysis/inprocess.py) in the columns of the services'
    (service, variant, the point, round, rps); empty for a run that timed them apart."""
    frames = [
        inprocess.loop_bursts(run.ceiling, run.server_cores),
        inprocess.batch_bursts(run.batch_ceiling),
        inprocess.replay_bursts(run.replay),
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["service", "variant", *POINT, "round", "rps"])
    return pd.concat(frames, ignore_index=True)[["service", "variant", *POINT, "round", "rps"]]


def at_point(table: pd.DataFrame, payload: str, concurrency: int) -> pd.DataFrame:
    """The rows of one point (e.g. the seed's) of a ratios table."""
    if table.empty:
        return table
    mine = (table["payload"].astype(str) == str(payload)) & (
        pd.to_numeric(table["concurrency"]) == int(concurrency)
    )
    return table[mine].reset_index(drop=True)


def estimates(table: pd.DataFrame, kind: str, per_point: bool = True) -> pd.DataFrame:
    """One kind's rows indexed by (service, variant, payload, concurrency), or by (service,
    variant) alone for the rows of one point (``per_point=False``)."""
    keys = ["service", "variant", *(POINT if per_point else [])]
    mine = table[table["kind"] == kind] if len(table) else table
    return mine.set_index(keys)


def baseline_columns(run: Run, frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """:data:`INTERVAL_COLUMNS` for each row of ``frame`` (service, variant, payload,
    concurrency): its ``baseline`` ratio at that point; 1.0 without an interval for a
    baseline itself; NaN when its baseline was not paired with it there."""
    base = estimates(table, "baseline")
    rows = []
    for r in frame[["service", "variant", *POINT]].itertuples(index=False):
        key = (str(r.service), str(r.variant), str(r.payload), int(r.concurrency))
        if not run.baseline(key[0]):
            rows.append({"ratio": 1.0, "ratio_ci_low": math.nan, "ratio_ci_high": math.nan})
        elif key in base.index:
            rows.append({c: float(base.at[key, c]) for c in INTERVAL_COLUMNS})
        else:
            rows.append(dict.fromkeys(INTERVAL_COLUMNS, math.nan))
    return pd.DataFrame(rows, columns=INTERVAL_COLUMNS, index=frame.index)


def unit_converged(run: Run, seed_rows: pd.DataFrame, service: str, variant: str) -> Any:
    """Did the unit's ratios at the seed point reach the target? (the summary's ``converged``)

    True when every ratio the unit takes part in (on either side) converged, False when one
    did not; a unit in no ratio takes its point's ``converged`` from points.csv. NaN for a
    run without points.csv: it was not measured to a target."""
    if run.points is None:
        return math.nan
    unit = (service, variant)
    mine = [
        bool(r.converged)
        for r in seed_rows.itertuples(index=False)
        if unit in ((r.service, r.variant), (r.versus_service, r.versus_variant))
    ]
    if mine:
        return all(mine)
    pts = run.points
    at = pts[(pts["payload"].astype(str) == run.seed_payload)]
    at = at[pd.to_numeric(at["concurrency"]) == run.seed_concurrency]
    return bool(at["converged"].iloc[0]) if len(at) else math.nan


def formatted(estimate: float, low: float = math.nan, high: float = math.nan) -> str:
    """'1.28× [1.22–1.34]' (the 95 % interval in brackets when there is one); '–' for NaN."""
    if estimate is None or pd.isna(estimate):
        return "–"
    text = f"{estimate:.2f}×"
    if low is not None and high is not None and not pd.isna(low) and not pd.isna(high):
        text += f" [{low:.2f}–{high:.2f}]"
    return text


def unit_label(run: Run, service: str, variant: str) -> str:
    """A ratio side as the report names it: a service's label ('Python · int8'), or an
    in-process unit's ('python loop (in process) · int8')."""
    own = inprocess.label(service)
    if own is None:
        return run.unit_label(service, variant)
    return f"{own} · {variant}" if run.multi_variant else own


def compared(run: Run, r: Any) -> str:
    """'Rust native release · int8 ÷ Python · int8' for a ratios row."""
    mine = unit_label(run, str(r.service), str(r.variant))
    return f"{mine} ÷ {unit_label(run, str(r.versus_service), str(r.versus_variant))}"


def readable(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """Ratios (e.g. one point's) as the report lists them: what is compared ("Rust · int8 ÷
    Python · int8"), the estimate with its interval, rounds, half-width (%), converged."""
    rows = [
        {
            "kind": r.kind,
            "compared": compared(run, r),
            "ratio [95 % CI]": formatted(r.ratio, r.ratio_ci_low, r.ratio_ci_high),
            "rounds": int(r.rounds),
            "± %": float(r.half_width_pct),
            "converged": bool(r.converged),
        }
        for r in table.itertuples(index=False)
    ]
    return pd.DataFrame(
        rows, columns=["kind", "compared", "ratio [95 % CI]", "rounds", "± %", "converged"]
    )


def summary_view(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's paired ratios per unit (its label): req/s, ÷ its baseline and ÷ fp32
    with their intervals (the second only with several variants), and ``converged`` (only
    for a run measured to a target)."""
    view = pd.DataFrame(
        {
            "req/s": summary["rps"].to_numpy(float),
            "÷ baseline [95 % CI]": [
                formatted(r.ratio, r.ratio_ci_low, r.ratio_ci_high)
                for r in summary.itertuples(index=False)
            ],
        },
        index=pd.Index(
            [
                run.unit_label(str(s), str(v))
                for s, v in zip(summary["service"], summary["variant"], strict=True)
            ],
            name="service",
        ),
    )
    if run.multi_variant:
        view[f"÷ {BASE_VARIANT} [95 % CI]"] = [
            formatted(r.variant_factor, r.variant_factor_ci_low, r.variant_factor_ci_high)
            for r in summary.itertuples(index=False)
        ]
    view["rounds"] = summary["rounds"].to_numpy()
    if summary["converged"].notna().any():
        view["converged"] = summary["converged"].to_numpy()
    return view


#: Each kind of ratio in a few words, as a table's first column names it.
KIND_WORDS = {
    "control": "A/A control",
    "baseline": "÷ its baseline",
    "tuned": "÷ the tuned Python",
    "step": "÷ the ladder's step before",
    "variant": "÷ fp32",
    "batching": "batched ÷ its twin",
    "efficiency": "÷ its batch-1 limit in process",
    "in_process_variant": "in process: ÷ fp32",
    "batch_size": "in process: batch b ÷ batch 1",
    "queue_efficiency": "÷ its own queue replayed",
    "queue_batching": "replayed queue: c clients ÷ one",
}


def readable_shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`readable` as the report prints it: headed in words, no index, the half-width
    to one decimal, converged as yes/no (the interval already carries the ratio's digits)."""
    view = readable(run, table)
    return pd.DataFrame(
        {
            "ratio": view["kind"].map(lambda k: KIND_WORDS.get(k, k)),
            "compared": view["compared"],
            "ratio [95 % CI]": view["ratio [95 % CI]"],
            "rounds": view["rounds"],
            "± % of the ratio": view["± %"].round(1),
            "converged": view["converged"].map(yes_no),
        }
    )


def summary_shown(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`summary_view` as the report prints it: the unit as a column, req/s to whole
    numbers, converged as yes/no."""
    view = summary_view(run, summary).reset_index()
    view["req/s"] = view["req/s"].round(0)
    if "converged" in view:
        view["converged"] = view["converged"].map(yes_no)
    return view


def yes_no(value: Any) -> str:
    """A flag as a reader reads it; '' when unknown (a run not measured to a target)."""
    return "" if pd.isna(value) else ("yes" if facts.truth(value) else "no")
