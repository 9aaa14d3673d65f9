"""The ladder: is it Rust, or is it the Python stack? (issue 19)

A ladder climbs from a baseline (the seed's Python) to its tuned stack one change at a time:
each step is a service whose ``step_from`` (services.csv) is the step before it, the same
program with one lever more. The rungs are measured with fp32 at the seed point, in the same
paired rounds as every service, so each step's ratio to the one before (ratios.csv kind
``step``) and to the baseline (kind ``baseline``) has its interval; the services of another
language stand beside the ladder with their ratio to the baseline and to the tuned stack
(kind ``tuned``): how much of their lead the tuned Python leaves.

* :func:`steps` - the ladder's services, its foot first, each after the one it adds to;
  :func:`tuned_stack` its top, :func:`path` the way up to it, :func:`beside` the services
  of another language set beside it.
* :func:`ladder_table` - ``ladder.csv``: each step and each service beside the ladder, its
  req/s, its three ratios and where one request's time goes at concurrency 1.
* :func:`shown` - ladder.csv as the report prints it.
* :func:`lead_table` - the services beside the ladder against the baseline and the tuned
  stack, per model variant.
* :func:`answer` - the section's sentences; :func:`recovered` - the share of a lead that
  the tuned stack recovers.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from servebench.analysis import measures, paired, ratios, tables
from servebench.rundir.reader import BASE_VARIANT, Run

#: ladder.csv's columns (docs/DATA.md).
COLUMNS = [
    "service", "label", "step_from", "rung", "rps",
    "step_ratio", "step_ci_low", "step_ci_high",
    "foot_ratio", "foot_ci_low", "foot_ci_high",
    "tuned_ratio", "tuned_ci_low", "tuned_ci_high",
    "client_ms", "tokenization_ms", "inference_ms", "serving_ms",
]  # fmt: skip
#: A ratio's three columns in ladder.csv, by its side: the step before, the foot, the tuned.
SIDES = ("step", "foot", "tuned")


def steps(run: Run) -> list[str]:
    """The ladder's services measured in the run: each foot (a service some other steps
    from, itself stepping from none), then, depth first, the services that step from it in
    display order. Empty for a run without a ladder."""
    present = [s for s in run.facts.index if s in _measured(run)]
    step_from = {s: str(run.fact(s, "step_from")) for s in present}
    children: dict[str, list[str]] = {}
    for service in present:  # display order
        if step_from[service] in present:
            children.setdefault(step_from[service], []).append(service)
    feet = [s for s in present if s in children and not step_from[s]]
    order: list[str] = []

    def climb(service: str) -> None:
        order.append(service)
        for child in children.get(service, []):
            climb(child)

    for foot in feet:
        climb(foot)
    return order


def tuned_stack(run: Run, foot: str) -> str:
    """The top of `foot`'s ladder (:func:`servebench.analysis.paired.ladder_tops`, as the
    ``tuned`` ratios name it)."""
    facts = run.facts
    candidates = facts[~facts["rung"] & ~facts["control"]]
    tops = paired.ladder_tops(dict(candidates["baseline"]), dict(candidates["step_from"]))
    return tops.get(foot, "")


def path(run: Run, top: str) -> list[str]:
    """The steps from the foot of `top`'s ladder up to `top`, foot first."""
    climbed = [top]
    while str(run.fact(climbed[-1], "step_from")):
        climbed.append(str(run.fact(climbed[-1], "step_from")))
    return climbed[::-1]


def beside(run: Run) -> list[str]:
    """The services beside the ladder: another language's, unbatched, not a debug build
    (the seed's table has those), compared with the ladder's tuned stack (kind ``tuned``)."""
    ladder = steps(run)
    if not ladder:
        return []
    language = str(run.fact(ladder[0], "language"))
    measured = _measured(run)
    return [
        s
        for s in run.facts.index
        if s in measured
        and s not in ladder
        and str(run.fact(s, "language")) != language
        and not run.fact(s, "batching")
        and not run.fact(s, "control")
        and str(run.fact(s, "build")) != "debug"
    ]


def ladder_table(run: Run, write: bool = False) -> pd.DataFrame:
    """One row per step of the ladder (foot first) and per service beside it, with fp32 at
    the seed point (columns :data:`COLUMNS`, meanings in docs/DATA.md). Writes ``ladder.csv``
    into the run directory when ``write``; empty for a run without a ladder."""
    ladder = steps(run)
    if not ladder:
        return pd.DataFrame(columns=COLUMNS)
    foot, top = ladder[0], tuned_stack(run, ladder[0])
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    rps = _seed_rps(run)
    stages = _stages(run)
    rows = []
    for service in [*ladder, *beside(run)]:
        versus = {"step": str(run.fact(service, "step_from")), "foot": foot, "tuned": top}
        row = {
            "service": service,
            "label": run.label(service),
            "step_from": versus["step"],
            "rung": bool(run.fact(service, "rung")),
            "rps": rps.get(service, math.nan),
        }
        for side in SIDES:
            ratio = _ratio(seed, service, versus[side]) if service != versus[side] else None
            row.update(zip(_columns(side), ratio or (math.nan,) * 3, strict=True))
        row.update(stages.get(service, {}))
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    if write:
        table.to_csv(Path(run.path) / "ladder.csv", index=False)
    return table


def shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`ladder_table` as the report prints it: one row per label, req/s, the three
    ratios with their intervals (headed by what they divide by) and the ms at c=1."""
    if table.empty:
        return pd.DataFrame()
    foot = str(table["service"].iloc[0])
    top = tuned_stack(run, foot)
    heads = {"step": "÷ the step before", "foot": f"÷ {run.label(foot)}"}
    heads["tuned"] = f"÷ {run.label(top)}" if top else "÷ tuned"
    view = pd.DataFrame({"req/s": table["rps"].round(0).to_numpy()}, index=table["label"])
    for side, head in heads.items():
        view[f"{head} [95 % CI]"] = [
            ratios.formatted(*(float(r[c]) for c in _columns(side))) for _, r in table.iterrows()
        ]
    for column, head in {
        "client_ms": "c=1 ms",
        "serving_ms": "serving ms",
        "tokenization_ms": "tokenization ms",
        "inference_ms": "inference ms",
    }.items():
        view[head] = table[column].round(2).to_numpy()
    view.index.name = ""
    return view


def lead_table(run: Run) -> pd.DataFrame:
    """Each service beside the ladder, per model variant: its paired ratio to the ladder's
    foot (``baseline``) and to its tuned stack (``tuned``) at the seed point, as printed
    ratios, and the share of the lead the tuned stack recovers (``1 − log tuned / log
    foot``: 0 when tuning gains nothing, 1 when it closes the gap)."""
    columns = ["service", "variant", "÷ foot", "÷ tuned", "recovered"]
    ladder = steps(run)
    if not ladder:
        return pd.DataFrame(columns=columns)
    foot, top = ladder[0], tuned_stack(run, ladder[0])
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    rows = []
    for service in beside(run):
        for variant in run.variants_in_order():
            lead = _ratio(seed, service, foot, variant)
            left = _ratio(seed, service, top, variant)
            if lead is None or left is None:
                continue
            rows.append(
                {
                    "service": run.label(service),
                    "variant": variant,
                    "÷ foot": ratios.formatted(*lead),
                    "÷ tuned": ratios.formatted(*left),
                    "recovered": recovered(lead[0], left[0]),
                }
            )
    return pd.DataFrame(rows, columns=columns).rename(
        columns={
            "÷ foot": f"÷ {run.label(foot)} [95 % CI]",
            "÷ tuned": f"÷ {run.label(top)} [95 % CI]",
            "recovered": f"share of the lead {run.label(top)} recovers",
        }
    )


def lead_shown(run: Run) -> pd.DataFrame:
    """:func:`lead_table` as the report prints it: headed in words, no index, the share
    recovered in %."""
    table = lead_table(run)
    share = [c for c in table.columns if c.startswith("share of the lead")]
    view = table.rename(columns={"variant": "model"})
    for column in share:
        view[f"{column}, %"] = (view.pop(column) * 100).round(0)
    return view.reset_index(drop=True)


def recovered(lead: float, left: float) -> float:
    """The share of a lead (a ratio > 1 over the baseline) that the tuned stack recovers,
    on the log scale, where steps add up: ``1 − log(left) / log(lead)``; NaN when there was
    no lead to recover (``lead`` ≤ 1)."""
    if not (lead > 1 and left > 0):
        return math.nan
    return 1 - math.log(left) / math.log(lead)


def answer(run: Run) -> str | None:
    """What the ladder says, in two or three sentences; None for a run without one."""
    table = ladder_table(run)
    if table.empty:
        return None
    rows = table.set_index("service")
    ladder = steps(run)
    foot, top = ladder[0], tuned_stack(run, ladder[0])
    if not top:
        return None
    climbed = path(run, top)[1:]
    parts = []
    tuned = rows.loc[top]
    parts.append(
        f"**{run.label(top)}** answers {tuned['rps']:.0f} req/s at the seed point against "
        f"{rows.loc[foot, 'rps']:.0f} for {run.label(foot)}: "
        f"{ratios.formatted(*_three(tuned, 'foot'))}, with fp32."
    )
    best = max(climbed, key=lambda s: rows.loc[s, "step_ratio"], default="")
    if best:
        step = rows.loc[best]
        parts.append(
            f"Its largest step is {run.label(best)} "
            f"({ratios.formatted(*_three(step, 'step'))} over the step before it)."
        )
    for service in beside(run):
        row = rows.loc[service]
        share = recovered(float(row["foot_ratio"]), float(row["tuned_ratio"]))
        parts.append(
            f"{run.label(service)} leads {run.label(foot)} by "
            f"{ratios.formatted(*_three(row, 'foot'))} and {run.label(top)} by "
            f"{ratios.formatted(*_three(row, 'tuned'))}"
            + (f": the tuned stack recovers {share:.0%} of that lead." if share == share else ".")
        )
    serving = [
        f"{run.label(s)} {rows.loc[s, 'serving_ms']:.2f} ms"
        for s in [foot, top, *beside(run)]
        if np.isfinite(rows.loc[s, "serving_ms"])
    ]
    if serving:
        parts.append(
            "One request's serving time at concurrency 1 (its round trip less the service's "
            "own tokenization and inference: HTTP, routing, JSON, hops): "
            + ", ".join(serving)
            + "."
        )
    return " ".join(parts)


def _three(row: pd.Series, side: str) -> tuple[float, float, float]:
    return tuple(float(row[c]) for c in _columns(side))  # type: ignore[return-value]


def _columns(side: str) -> list[str]:
    return [f"{side}_ratio", f"{side}_ci_low", f"{side}_ci_high"]


def _ratio(
    seed: pd.DataFrame, service: str, versus: str, variant: str = BASE_VARIANT
) -> tuple[float, float, float] | None:
    """`service` ÷ `versus` (same variant) at the seed point, of whichever kind states it
    (the ladder's first step is its ``baseline`` ratio)."""
    if not versus or seed.empty:
        return None
    mine = seed[
        (seed["service"] == service)
        & (seed["variant"] == variant)
        & (seed["versus_service"] == versus)
        & (seed["versus_variant"] == variant)
    ]
    if mine.empty:
        return None
    r = mine.iloc[0]
    return float(r["ratio"]), float(r["ratio_ci_low"]), float(r["ratio_ci_high"])


def _measured(run: Run) -> set[str]:
    """The services with fp32 hey runs at the seed point (the rungs' included)."""
    bursts = _seed_bursts(run)
    return set(bursts["service"].astype(str))


def _seed_bursts(run: Run) -> pd.DataFrame:
    """The fp32 hey runs at the seed point, the rungs' included (once per run)."""
    return run.cached("ladder_seed_bursts", lambda: _fp32_at_seed(run))


def _fp32_at_seed(run: Run) -> pd.DataFrame:
    frames = [tables.per_run(run), tables.rung_runs(run)]
    bursts = pd.concat([f for f in frames if len(f)], ignore_index=True)
    at = (
        (bursts["payload"].astype(str) == run.seed_payload)
        & (pd.to_numeric(bursts["concurrency"]) == run.seed_concurrency)
        & (bursts["variant"].astype(str) == BASE_VARIANT)
    )
    return bursts[at]


def _seed_rps(run: Run) -> dict[str, float]:
    """Each service's median req/s over its paired fp32 bursts at the seed point."""
    medians = _seed_bursts(run).groupby("service")["rps"].median()
    return {str(service): float(rps) for service, rps in medians.items()}


def _stages(run: Run) -> dict[str, dict[str, float]]:
    """Each service's concurrency-1 round trip on the seed payload with fp32 (ms): client,
    tokenization, inference, and the serving time (the rest: HTTP, routing, JSON, hops)."""
    dec = measures.stage_decomposition(run, rungs=True)
    if dec.empty:
        return {}
    mine = dec[(dec["payload"] == run.seed_payload) & (dec["variant"] == BASE_VARIANT)]
    return {
        str(r.service): {
            "client_ms": r.client_us / 1e3,
            "tokenization_ms": r.tokenization_us / 1e3,
            "inference_ms": r.inference_us / 1e3,
            "serving_ms": (r.network_http_us + r.handler_overhead_us) / 1e3,
        }
        for r in mine.itertuples(index=False)
    }
