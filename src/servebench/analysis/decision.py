"""Which stack for which latency bound: the open-loop rates under each p99 bound, what a core
kept for that rate costs, and the fastest unit under each bound.

The open-loop search (measure/vegeta.py ``find_rates``) makes one series of attacks per unit
for every bound. An attack **meets** a bound when it is ``clean`` (every answer 2xx and the
asked rate sent) and its p99 is within the bound. Under each bound a unit's **rate** is the
highest rate of its attacks that met it, and ``missed_rate`` the lowest rate above that which
did not: the true limit lies between them (the search's bracket, not a statistical
interval: one search per unit). Beside it the unit's closed-loop req/s at the seed point with
its 95 % interval (per_config.csv), which a sustainable open-loop rate cannot exceed by more
than the search's overload allowance (configs/default.yaml ``openloop_duration_s``).

A unit's cost under a bound is a server core kept for its rate (analysis/cost.py): every unit
runs on the same cores, so **the fastest under a bound is also the cheapest**.

* :func:`rates` - decision.csv: every searched unit under every bound;
* :func:`fastest` - the decision table: the fastest unit under each bound;
* :func:`sentence` / :func:`bullet` / :func:`shown` - the report's words and table.
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import cost, factors
from servebench.analysis.measures import openloop_payload
from servebench.analysis.stats import as_bool, rate_bracket
from servebench.rundir import facts
from servebench.rundir.reader import Run

#: What the columns of decision.csv mean: docs/DATA.md.
COLUMNS = [
    "bound_ms", "service", "variant", "rate", "missed_rate", "missed_below", "attacks", "p99_s",
    "closed_rps", "closed_rps_ci_low", "closed_rps_ci_high", "rate_vs_closed",
    "usd_per_million", "batch_dependent", "fastest",
]  # fmt: skip


def meets(attacks: pd.DataFrame, bound_s: float) -> pd.Series:
    """Which attacks met ``bound_s``: clean, with p99 within it. A run from before issue 20
    recorded one bound's ``meets_bound`` instead of ``clean``; within that bound it reads."""
    clean = as_bool(attacks["clean" if "clean" in attacks else "meets_bound"])
    return clean & (attacks["p99_s"].astype(float) <= bound_s + 1e-12)


def bracket(attacks: pd.DataFrame, bound_s: float) -> tuple[float, float, float, int]:
    """(highest rate that met the bound, lowest rate above it that missed, the p99 of the
    attack at the first, how many attacks below the first missed it); NaN where there is
    none. A miss below a met rate is the machine's noise: one attack is one sample of a
    noisy host, so the rate found is then the luckier of the two."""
    ok = meets(attacks, bound_s)
    rates = attacks["rate"].astype(float)
    met, missed = rate_bracket(zip(rates, ok, strict=True))
    if not ok.any():
        return math.nan, _finite(missed), math.nan, 0
    p99 = float(attacks.loc[ok & (rates == met), "p99_s"].iloc[0])
    return met, _finite(missed), p99, int((~ok & (rates < met)).sum())


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def moving_variants(run: Run) -> set[str]:
    """The variants whose answers move with batch-mates (variants.csv ``batch_invariant``
    false: dynamic int8's); a batched service serving one is ``batch_dependent``."""
    faith = factors.faithfulness(run).dropna(subset=["batch_invariant"])
    return {str(v) for v, i in zip(faith["variant"], faith["batch_invariant"], strict=True)
            if not facts.truth(i)}  # fmt: skip


def rates(run: Run, per_config: pd.DataFrame, write: bool = False) -> pd.DataFrame:
    """decision.csv (:data:`COLUMNS`): every unit of openloop.csv under every bound of the
    run (tightest first, units in display order); ``fastest`` marks each bound's highest
    rate. Header only without open-loop attacks. Written into the run directory when
    ``write``."""
    table = _rates(run, per_config)
    if write:
        table.to_csv(run.path / "decision.csv", index=False)
    return table


def _rates(run: Run, per_config: pd.DataFrame) -> pd.DataFrame:
    payload = openloop_payload(run)
    if payload is None or run.openloop is None or not run.latency_bounds_s:
        return pd.DataFrame(columns=COLUMNS)
    ol = run.openloop[run.openloop["payload"] == payload]
    seed = per_config[
        (per_config["payload"] == run.seed_payload)
        & (per_config["concurrency"] == run.seed_concurrency)
    ].set_index(["service", "variant"])
    priced = cost.price(run.parameters)
    cores = max(1, run.server_cores)
    moving = moving_variants(run)
    rows = []
    for bound_s in run.latency_bounds_s:
        for service, variant in run.units_in_order(ol):
            attacks = ol[(ol["service"] == service) & (ol["variant"] == variant)]
            rate, missed, p99, below = bracket(attacks, bound_s)
            closed = seed.loc[(service, variant)] if (service, variant) in seed.index else None
            closed_rps = float(closed["rps"]) if closed is not None else math.nan
            seconds = cost.provisioned_core_seconds(rate, cores)
            rows.append(
                {
                    "bound_ms": bound_s * 1e3,
                    "service": service,
                    "variant": variant,
                    "rate": rate,
                    "missed_rate": missed,
                    "missed_below": below,
                    "attacks": len(attacks),
                    "p99_s": p99,
                    "closed_rps": closed_rps,
                    "closed_rps_ci_low": _get(closed, "rps_ci_low"),
                    "closed_rps_ci_high": _get(closed, "rps_ci_high"),
                    "rate_vs_closed": rate / closed_rps if closed_rps else math.nan,
                    "usd_per_million": (
                        cost.usd_per_million(seconds, priced) if priced else math.nan
                    ),
                    "batch_dependent": facts.truth(run.fact(service, "batching"))
                    and variant in moving,
                }
            )
    table = pd.DataFrame(rows)
    best = table.dropna(subset=["rate"]).groupby("bound_ms")["rate"].idxmax()
    table["fastest"] = table.index.isin(best.to_numpy())
    return table[COLUMNS]


def _get(row: pd.Series | None, column: str) -> float:
    return float(row[column]) if row is not None and column in row else math.nan


def fastest(table: pd.DataFrame) -> pd.DataFrame:
    """The decision table: each bound's fastest unit (a bound no unit met has no row)."""
    return table[table["fastest"].map(facts.truth)].reset_index(drop=True)


def choices(run: Run, best: pd.DataFrame) -> list[str]:
    """Each row of the decision table in words: the bound, the unit, its rate and cost."""
    parts = []
    for r in best.itertuples(index=False):
        dollars = "" if math.isnan(r.usd_per_million) else f", ${r.usd_per_million:.3f} a million"
        caveat = " (its answers move with batch-mates)" if facts.truth(r.batch_dependent) else ""
        parts.append(
            f"p99 ≤ {r.bound_ms:g} ms: {run.unit_label(r.service, r.variant)}{caveat}, "
            f"{r.rate:.0f} req/s{dollars}"
        )
    return parts


def sentence(run: Run, table: pd.DataFrame) -> str | None:
    """Per bound, the fastest unit, its rate and its cost; then which bounds no unit met."""
    best = fastest(table)
    if best.empty:
        return None
    searched = table.drop_duplicates(["service", "variant"])
    text = (
        f"Of the {len(searched)} units searched in open loop, the fastest under each bound "
        f"(and so the cheapest: each runs on the same {max(1, run.server_cores)} core(s)): "
        + "; ".join(choices(run, best))
        + "."
    )
    unmet = sorted(set(table["bound_ms"]) - set(best["bound_ms"]))
    if unmet:
        text += f" No unit met p99 ≤ {', '.join(f'{b:g}' for b in unmet)} ms at any rate tried."
    return text


def bullet(run: Run, table: pd.DataFrame) -> str | None:
    """The short answer's line: :func:`choices` after a bold lead."""
    best = fastest(table)
    if best.empty:
        return None
    return (
        "**Fastest and cheapest under a p99 bound** (open loop): "
        + "; ".join(choices(run, best))
        + "."
    )


def _interval(low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return ""
    return f"{low:.0f}–{high:.0f}"


def shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`rates` (or :func:`fastest`) as the report prints it: headed in words."""
    return pd.DataFrame(
        {
            "p99 bound (ms)": table["bound_ms"].map(lambda b: f"{b:g}"),
            "service": [run.label(str(s)) for s in table["service"]],
            "model": table["variant"],
            "highest rate met (req/s)": table["rate"].round(0),
            "lowest missed above": table["missed_rate"].round(0),
            "misses below (noise)": table["missed_below"],
            "its p99 (ms)": (table["p99_s"] * 1e3).round(0),
            "closed-loop req/s": table["closed_rps"].round(0),
            "its 95 % interval": [
                _interval(lo, hi)
                for lo, hi in zip(
                    table["closed_rps_ci_low"], table["closed_rps_ci_high"], strict=True
                )
            ],
            "÷ closed loop": table["rate_vs_closed"].round(2),
            "$ per million (a core kept for the rate)": table["usd_per_million"].round(3),
            "answers move with batch-mates": table["batch_dependent"].map(
                lambda b: "yes" if facts.truth(b) else "no"
            ),
        }
    ).reset_index(drop=True)
