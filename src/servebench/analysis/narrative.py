"""The report's short answer, written from one run's own numbers.

:func:`answer` states, as a few markdown bullets, what a reader of the report wants first:

* the study's own question first, the language with the design fixed (:func:`language`):
  each unbatched release build of another language ÷ its baseline and ÷ its baseline's tuned
  stack (ratios.csv kind ``tuned``), with their intervals, and in plain words when an
  interval includes 1;
* which service is fastest at the seed point, and by how much against the seed's baseline
  (the same pair as the seed's Difference column, :func:`servebench.analysis.seed.seed_pair`):
  the paired ratio with its 95 % interval when the summary has it, labelled cross-design
  when batching differs between the two;
* where the model dominates: the share of a request's latency at concurrency 1 that the
  model itself takes (tokenize + ONNX Runtime, measured in process, no HTTP);
* what each other model variant (e.g. int8) changes: its ÷ fp32 factor per language, in
  process and over HTTP, and how often it still gives fp32's label;
* what dynamic batching changes: each batched service ÷ its unbatched twin at the seed point
  and on the mixed workload (how close to its own queue replayed in process, the ratio without
  the bursts' drain, its short texts' p99 against the twin's), and how far past the batch-1
  in-process ceiling it got;
* how far to trust the numbers (:func:`precision`): the widest interval and counts of what
  fell short, never a list, so that the answer is as long on a noisy run as on a calm one.

Every number comes from the run (``summary`` is ``summary.csv``'s rows, i.e.
:func:`servebench.analysis.tables.build_summary`); nothing here names a service or a
variant, so a run of other services or variants gets its own sentences.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from servebench.analysis import (
    batching,
    decision,
    factors,
    length_classes,
    measures,
    mixed_limits,
    ratios,
    seed,
    stability,
    tables,
)
from servebench.paths import MIXED
from servebench.rundir import facts
from servebench.rundir.reader import BASE_VARIANT, Run


def rate(value: float) -> str:
    """Requests/sec as a reader quotes it: no decimals from 100 on."""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}"


def times(ratio: float) -> str:
    return f"{ratio:.2f}×"


def spread(values: pd.Series) -> str:
    """A median factor and, when the values differ, their range."""
    low, high, mid = values.min(), values.max(), values.median()
    return (
        times(mid)
        if math.isclose(low, high, rel_tol=5e-3)
        else f"{times(mid)} ({low:.2f}–{high:.2f})"
    )


def like_for_like(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """The summary's fp32 rows that answer the study's own question, the language with the
    design held fixed: release builds that do not batch, served in another language than
    their baseline, with their paired ratio to it (display order)."""
    rows = seed.of_variant(summary)
    keep = []
    for r in rows.itertuples(index=False):
        service = str(r.service)
        base = run.baseline(service)
        keep.append(
            bool(base)
            and not bool(run.fact(service, "batching"))
            and str(run.fact(service, "build")) != "debug"
            and base in run.facts.index
            and str(run.fact(service, "language")) != str(run.fact(base, "language"))
        )
    return rows[keep].reset_index(drop=True)


def language(run: Run, summary: pd.DataFrame) -> str | None:
    """The like-for-like language ratios first (:func:`like_for_like`), each with its 95 %
    interval, saying so in plain words when the interval includes 1."""
    rows = like_for_like(run, summary)
    if rows.empty:
        return None
    seed_ratios = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    tuned = ratios.estimates(seed_ratios, "tuned", per_point=False)
    parts = []
    for r in rows.itertuples(index=False):
        base = run.label(run.baseline(str(r.service)))
        part = f"{r.label} ÷ {base} {_plainly(r.ratio, r.ratio_ci_low, r.ratio_ci_high)}"
        if (r.service, BASE_VARIANT) in tuned.index:
            t = tuned.loc[(r.service, BASE_VARIANT)]
            versus = run.label(str(t["versus_service"]))
            part += f", ÷ {versus} {_plainly(*(t[c] for c in ratios.INTERVAL_COLUMNS))}"
        parts.append(part)
    return (
        f"**The language, same design** (fp32, `{run.seed_payload}` at c={run.seed_concurrency}, "
        "req/s paired per round [95 % interval]): " + "; ".join(parts) + "."
    )


def _plainly(ratio: float, low: float, high: float) -> str:
    """A ratio with its interval, and "no measurable difference" when that includes 1 (as
    short as the plain case: a noisy host should not make the answer much wordier)."""
    text = ratios.formatted(ratio, low, high)
    if pd.notna(low) and low <= 1 <= high:
        text += " (no measurable difference)"
    return text


def fastest(run: Run, summary: pd.DataFrame) -> str:
    """The fastest service at the seed point (fp32, the seed's model) against the baseline:
    the paired ratio with its interval when the summary has it, and a cross-design
    comparison called one (batching on one side only)."""
    rows = seed.of_variant(summary).set_index("service")
    best = str(rows["rps"].idxmax())
    pair = seed.seed_pair(summary, run.facts)
    text = f"**Fastest at the seed point**: **{rows.at[best, 'label']}**, "
    text += f"{rate(rows.at[best, 'rps'])} req/s"
    base = pair[0] if pair else run.baseline(best)
    if base and base in rows.index and base != best:
        ratio = ratios.formatted(rows.at[best, "rps"] / rows.at[base, "rps"])
        if base == run.baseline(best) and "ratio" in rows and pd.notna(rows.at[best, "ratio"]):
            ratio = ratios.formatted(*(rows.at[best, c] for c in ratios.INTERVAL_COLUMNS))
        text += f", {ratio} {rows.at[base, 'label']}'s {rate(rows.at[base, 'rps'])}"
        if bool(run.fact(best, "batching")) != bool(run.fact(base, "batching")):
            same = run.fact(best, "language") == run.fact(base, "language")
            text += " (a cross-design comparison: batching" + (
                ")" if same else " and the language at once)"
            )
    return text + "."


def _flagged(summary: pd.DataFrame, column: str, value: str) -> pd.Series:
    """Rows whose boolean ``column`` (as written to CSV: True/False/1/0/NaN) equals ``value``."""
    if column not in summary:
        return pd.Series(False, index=summary.index)
    return summary[column].astype(str).str.lower().isin([value, "1" if value == "true" else "0"])


def model_share(run: Run, summary: pd.DataFrame) -> pd.Series:
    """Per service (label; fp32): the in-process model time ÷ the median latency at
    concurrency 1 (in-process median + ``overhead_ms``). Empty without a ceiling."""
    rows = seed.of_variant(summary)
    shares = {}
    for row in rows.itertuples(index=False):
        _, total_us = measures.ceiling_for(run, str(row.service), BASE_VARIANT)
        overhead_us = float(getattr(row, "overhead_ms", math.nan)) * 1e3
        if math.isfinite(total_us) and math.isfinite(overhead_us):
            shares[str(row.label)] = total_us / (total_us + overhead_us)
    return pd.Series(shares, dtype=float)


def where_model_dominates(run: Run, summary: pd.DataFrame) -> str | None:
    share = model_share(run, summary)
    if share.empty:
        return None
    verdict = "the model dominates" if share.min() > 0.5 else "serving is a large share"
    # Two medians of a noisy machine: the loop can come out slower than a whole request
    # (above 100 %), which the sentence says in as many words whatever the noise.
    return (
        f"**At concurrency 1 {verdict}**: tokenize + ONNX Runtime in process are "
        f"{share.min():.0%} to {share.max():.0%} of a request's latency; the rest is "
        "HTTP, JSON and the client (above 100 %: noise)."
    )


def variant_change(run: Run, summary: pd.DataFrame, variant: str) -> str:
    """A variant ÷ fp32 at the seed point, per language: in process (each inference loop)
    and over HTTP (the services of each language), then its label agreement with fp32; one
    clause of :func:`variants_change`."""
    seed_ratios = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    tidy = factors.throughput_factors(summary, run.facts, seed_ratios)
    mine = tidy[tidy["variant"] == variant]
    loops = mine[mine["factor"] == factors.IN_PROCESS]
    served = mine[mine["factor"] == factors.VARIANT]
    language = served["service"].map(lambda s: str(run.fact(s, "language")) or "?")
    parts = [
        f"{r.inference} loop {ratios.formatted(r.ratio, r.ci_low, r.ci_high)}"
        for r in loops.itertuples(index=False)
    ]
    text = f"**{variant}**: in process " + (", ".join(parts) or "not measured")
    over_http = [
        f"{lang} services {spread(g)}" for lang, g in served["ratio"].groupby(language, sort=False)
    ]
    text += "; over HTTP " + (", ".join(over_http) or "not measured")
    faith = factors.faithfulness(run).set_index("variant")
    if variant in faith.index and pd.notna(faith.at[variant, "label_agreement"]):
        row = faith.loc[variant]
        agreement, sentences = row["label_agreement"], int(row["sentences"])
        text += f"; fp32's label on {agreement:.1%} of {sentences} sentences"
        if pd.notna(row["accuracy_change_pp"]):
            text += f", accuracy {row['accuracy_change_pp']:+.1f} pp"
        return text + batch_mates(row) + "."
    return text + "; label agreement with fp32 not recorded (no variants.csv)."


def variants_change(run: Run, summary: pd.DataFrame) -> str | None:
    """Every variant ÷ fp32 in one bullet: the short answer keeps one bullet per finding, so
    it does not grow with the variants."""
    variants = [v for v in factors.summary_variants(summary) if v != BASE_VARIANT]
    if not variants:
        return None
    clauses = " ".join(variant_change(run, summary, v) for v in variants)
    return f"**Each model variant ÷ fp32** (seed point). {clauses}"


def batch_mates(row: pd.Series) -> str:
    """Whether a variant's answers depend on who shares the batch (variants.csv), as a clause
    of :func:`variant_change` (kept short: the short answer has one per variant)."""
    if pd.isna(row["batch_invariant"]):
        return ""
    if facts.truth(row["batch_invariant"]):
        return "; batch-invariant"
    return (
        f"; **answers depend on batch-mates**: up to {row['batch_max_abs_diff']:.2g} of a "
        f"score, {int(row['batch_label_flips'])} labels flipped (concurrent check: labels only)"
    )


def batching_change(run: Run) -> str | None:
    """Each batched service ÷ its twin: at the seed point, and on the mixed workload at its
    highest concurrency (where batches pad) with the short texts' p99 beside the twin's;
    the best multiple of the batch-1 ceiling."""
    table = batching.twin_table(run)
    if table.empty:
        return None

    variants = [v for v in run.variants_in_order() if v in set(table["variant"].astype(str))]

    def ratios(rows: pd.DataFrame) -> str:
        """'Python batched 1.48× / 1.72×; Rust native batched ...': by service, the variants
        in the order the bullet names them once ("–" for one not measured there)."""
        rows = rows[np.isfinite(rows["rps_ratio"].to_numpy(float))]
        parts = []
        for service, mine in rows.groupby("service", sort=False):
            shown = per_variant(mine, "rps_ratio", variants, times)
            parts.append(f"{run.label(str(service))} {shown}")
        return "; ".join(parts)

    seed_rows = table[
        (table["payload"] == run.seed_payload) & (table["concurrency"] == run.seed_concurrency)
    ]
    text = "**Dynamic batching ÷ the same service unbatched**"
    if run.multi_variant:
        text += f" ({' / '.join(variants)})"
    text += " at the seed point: "
    text += ratios(seed_rows) or "not measured"
    mixed = table[table["payload"] == MIXED]
    if not mixed.empty:
        top = int(mixed["concurrency"].max())
        text += f"; on the mixed workload at c={top}: "
        text += ratios(mixed[mixed["concurrency"] == top])
        text += against_limits(run, top)
        text += short_texts(run, top, variants)
    best = seed_rows.dropna(subset=["x_batch1_ceiling"])
    if not best.empty:
        r = best.loc[best["x_batch1_ceiling"].idxmax()]
        text += (
            f". {run.unit_label(str(r['service']), str(r['variant']))} served "
            f"{times(r['x_batch1_ceiling'])} the batch-1 in-process ceiling"
        )
    return text + "."


def against_limits(run: Run, concurrency: int) -> str:
    """' (86–97 % of their own queues replayed in process; 1.45–1.57× their twins without the
    bursts' drain)': the ranges, over the batched services and variants on the mixed workload
    at ``concurrency``, of their req/s over their batched in-process limit and of their steady
    ratio to their twin (:mod:`servebench.analysis.mixed_limits`); '' without replays."""
    table = mixed_limits.mixed_limits(run)
    mine = table[table["concurrency"] == concurrency]
    parts = []
    share = mine["of_batched_limit"].dropna()
    if len(share):
        low, high = share.min() * 100, share.max() * 100
        parts.append(f"{low:.0f}–{high:.0f} % of their own queues replayed in process")
    steady = mine["steady_vs_twin"].dropna()
    if len(steady):
        parts.append(
            f"{steady.min():.2f}–{times(steady.max())} their twins without the bursts' drain"
        )
    return f" ({'; '.join(parts)})" if parts else ""


def short_texts(run: Run, concurrency: int, variants: list[str]) -> str:
    """'; short texts' p99 Python batched 62 / 55 ms vs 240 / 230 ms for its twin, ...': each
    batched service's p99 of the short class on the mixed workload at ``concurrency`` beside
    its twin's (:mod:`servebench.analysis.length_classes`), or '' without them."""
    table = length_classes.length_class_table(run)
    short = table[
        (table["length_class"] == length_classes.CLASSES[0])
        & (table["concurrency"] == concurrency)
        & np.isfinite(table["twin_p99_ms"].to_numpy(float))
    ]
    parts = [
        f"{run.label(str(service))} {per_variant(mine, 'p99_ms', variants, milliseconds)} ms "
        f"vs {per_variant(mine, 'twin_p99_ms', variants, milliseconds)} ms for its twin"
        for service, mine in short.groupby("service", sort=False)
    ]
    return f"; short texts' p99 {', '.join(parts)}" if parts else ""


def per_variant(
    rows: pd.DataFrame, column: str, variants: list[str], shown: Callable[[float], str]
) -> str:
    """One service's ``column`` per variant, in the order of ``variants``: '1.48× / 1.72×'
    ("–" for a variant it lacks)."""
    by_variant = dict(zip(rows["variant"].astype(str), rows[column], strict=True))
    return " / ".join(shown(by_variant[v]) if v in by_variant else "–" for v in variants)


def milliseconds(value: float) -> str:
    """A latency in ms as a reader quotes it: no decimals from 10 ms on."""
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def precision(run: Run, summary: pd.DataFrame) -> str | None:
    """How far the run's numbers can be trusted, in one bullet whose length does not grow
    with the noise: counts only (the *Stability* section names the units and points).

    For a run measured to a target (points.csv): the A/A control's noise floor, the widest
    95 % interval of the seed point's ratios (ratios.csv, every kind) against the target,
    and how many seed-point units (the summary's ``converged``) and points stopped short of
    it. The spread of a unit's Requests/sec across rounds is not counted there: short
    bursts on a drifting host spread by design, and the pairing is what cancels it. For a
    run without a target: how many units' Requests/sec spread beyond ``unstable_pct``
    across rounds, or None."""
    units = len(summary)
    unstable = int(_flagged(summary, "unstable", "true").sum())
    if summary["converged"].isna().all():  # no points.csv: no target was measured to
        if not unstable:
            return None
        return (
            f"**Precision**: {unstable} of {units} seed-point measurements spread over "
            f"{run.unstable_pct:g} % across rounds: read them with care "
            "(*Stability* lists them)."
        )
    target = f"±{run.rounds.target_ci_pct:g} %"
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    widths = seed["half_width_pct"].to_numpy(float) if len(seed) else np.array([])
    widest = float(np.nanmax(widths)) if np.isfinite(widths).any() else math.nan
    text = "**Precision**: " + noise_floor(run)
    if math.isfinite(widest):
        text += f"the widest 95 % interval at the seed point is ±{widest:.1f} % (target {target})"
    else:
        text += f"no seed-point ratio has an interval (target {target})"
    missed = int(_flagged(summary, "converged", "false").sum())
    points = stability.points_table(run)
    short = len(stability.unconverged(run))
    if not (missed or short):
        return text + "; every ratio and every point reached the target."
    text += f"; short of it: {missed} of {units} seed-point units, {short} of {len(points)} points"
    return text + " (*Stability* names them)."


def noise_floor(run: Run) -> str:
    """'A/A control (Python ÷ itself) 1.01× [0.99–1.03], a noise floor of ±2.0 %; ' from
    the seed point's ``control`` ratio, or '' for a run without one."""
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    control = seed[seed["kind"] == "control"] if len(seed) else seed
    if control.empty:
        return ""
    r = control.iloc[0]
    estimate = ratios.formatted(r["ratio"], r["ratio_ci_low"], r["ratio_ci_high"])
    floor = float(r["half_width_pct"])
    width = f"a noise floor of ±{floor:.1f} %" if math.isfinite(floor) else "no interval"
    honest = (
        ""
        if math.isfinite(floor) and r["ratio_ci_low"] <= 1 <= r["ratio_ci_high"]
        else (" (its interval misses 1: this run's intervals are too narrow)")
    )
    return (
        f"A/A control ({run.label(str(r['versus_service']))} ÷ itself) {estimate}, "
        f"{width}{honest}; "
    )


def answer(run: Run, summary: pd.DataFrame) -> str:
    """The short answer as markdown bullets, from the run's own numbers."""
    bullets = [language(run, summary), fastest(run, summary), where_model_dominates(run, summary)]
    bullets.append(variants_change(run, summary))
    bullets.append(batching_change(run))
    bullets.append(decision.bullet(run, decision.rates(run, tables.per_config(run))))
    bullets.append(precision(run, summary))
    return "\n".join(f"- {b}" for b in bullets if b)
