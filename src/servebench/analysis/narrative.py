"""The report's short answer, written from one run's own numbers.

:func:`answer` states, as a few markdown bullets, what a reader of the report wants first:

* which service is fastest at the seed point, and by how much against the seed's baseline
  (the same pair as the seed's Difference column, :func:`servebench.analysis.seed.seed_pair`):
  the paired ratio with its 95 % interval when the summary has it;
* where the model dominates: the share of a request's latency at concurrency 1 that the
  model itself takes (tokenize + ONNX Runtime, measured in process, no HTTP);
* what each other model variant (e.g. int8) changes: its ÷ fp32 factor per language, in
  process and over HTTP, and how often it still gives fp32's label;
* what dynamic batching changes: each batched service ÷ its unbatched twin at the seed point
  and on the mixed workload, and how far past the batch-1 in-process ceiling it got;
* which measurements fell short of the run's precision target (:func:`precision`).

Every number comes from the run (``summary`` is ``summary.csv``'s rows, i.e.
:func:`servebench.analysis.tables.build_summary`); nothing here names a service or a
variant, so a run of other services or variants gets its own sentences.
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import (
    batching,
    factors,
    measures,
    paired,
    ratios,
    seed,
    stability,
    tables,
)
from servebench.rundir.reader import BASE_VARIANT, Run

#: The most units a sentence names before it counts them instead.
MAX_NAMED = 4


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


def fastest(run: Run, summary: pd.DataFrame) -> str:
    """The fastest service at the seed point (fp32, the seed's model) against the baseline."""
    rows = seed.of_variant(summary).set_index("service")
    point = f"payload `{run.seed_payload}`, concurrency {run.seed_concurrency}, fp32"
    best = str(rows["rps"].idxmax())
    pair = seed.seed_pair(summary, run.facts)
    text = f"**Fastest at the seed point** ({point}): **{rows.at[best, 'label']}**, "
    text += f"{rate(rows.at[best, 'rps'])} req/s"
    base = pair[0] if pair else run.baseline(best)
    if base and base in rows.index and base != best:
        ratio = rows.at[best, "rps"] / rows.at[base, "rps"]
        paired_text = ""
        if base == run.baseline(best) and "ratio" in rows and pd.notna(rows.at[best, "ratio"]):
            ratio, paired_text = _paired_headline(run, rows.loc[best])
        text += (
            f", {times(ratio)} {rows.at[base, 'label']}'s {rate(rows.at[base, 'rps'])} "
            f"({(ratio - 1) * 100:+.0f} %{paired_text})"
        )
    slowest = str(rows["rps"].idxmin())
    if slowest != best:
        text += f"; slowest: {rows.at[slowest, 'label']}, {rate(rows.at[slowest, 'rps'])} req/s"
    flagged = [
        str(rows.at[s, "label"]) for s in (best, base) if s in rows.index and _unstable(rows, s)
    ]
    if flagged:
        names = ", ".join(flagged)
        text += f" (rounds spread over {run.unstable_pct:g} % for {names}: read with care)"
    return text + "."


def _paired_headline(run: Run, row: pd.Series) -> tuple[float, str]:
    """The paired ratio of a summary row to its baseline, and how it was paired: each
    round's ratio, so the machine's drift cancels."""
    ratio, low, high = (float(row[c]) for c in ratios.INTERVAL_COLUMNS)
    rounds = int(row["rounds"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return ratio, f"; paired over {rounds} round"
    text = f"; paired over {rounds} rounds, 95 % interval {low:.2f}–{high:.2f}×"
    width = paired.RatioInterval(ratio, low, high, rounds).half_width_pct
    if run.points is not None and width > run.rounds.target_ci_pct:
        text += f", short of the ±{run.rounds.target_ci_pct:g} % target"
    return ratio, text


def _unstable(rows: pd.DataFrame, service: str) -> bool:
    return "unstable" in rows and str(rows.at[service, "unstable"]).lower() in ("true", "1")


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
    low, high = share.idxmin(), share.idxmax()
    verdict = "the model dominates" if share.min() > 0.5 else "serving is a large share"
    text = (
        f"**At concurrency 1 {verdict}**: tokenize + ONNX Runtime (measured in process) are "
        f"{share.min():.0%} to {share.max():.0%} of a request's latency ({low}: "
        f"{share[low]:.0%}, {high}: {share[high]:.0%}); the rest is HTTP, JSON and the client."
    )
    if share.max() > 1:
        # Two medians of a noisy machine: the loop can come out slower than a whole request.
        text += " Above 100 % means the in-process loop measured slower than a request: noise."
    return text + (
        f" Under load (c={run.seed_concurrency}) the services differ by what they add around "
        "the model."
    )


def variant_change(run: Run, summary: pd.DataFrame, variant: str) -> str:
    """A variant ÷ fp32, per language: in process (each inference loop) and over HTTP
    (the services of each language), then its label agreement with fp32."""
    seed_ratios = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    tidy = factors.throughput_factors(summary, run.facts, seed_ratios)
    mine = tidy[tidy["variant"] == variant]
    loops = mine[mine["factor"] == factors.IN_PROCESS]
    served = mine[mine["factor"] == factors.VARIANT]
    language = served["service"].map(lambda s: str(run.fact(s, "language")) or "?")
    parts = [
        f"{k} loop {times(r)}" for k, r in zip(loops["inference"], loops["ratio"], strict=True)
    ]
    text = f"**{variant} ÷ fp32**: in process " + (", ".join(parts) or "not measured")
    over_http = [
        f"{lang} services {spread(g)}" for lang, g in served["ratio"].groupby(language, sort=False)
    ]
    text += "; over HTTP " + (", ".join(over_http) or "not measured")
    text += f" (req/s at the seed point; {variant} ÷ fp32 of the same service)."
    faith = factors.faithfulness(run).set_index("variant")
    if variant in faith.index and pd.notna(faith.at[variant, "label_agreement"]):
        row = faith.loc[variant]
        agreement, sentences = row["label_agreement"], int(row["sentences"])
        text += f" It gives fp32's label on {agreement:.1%} of {sentences} sentences"
        if pd.notna(row["accuracy_change_pp"]):
            text += f", held-out accuracy {row['accuracy_change_pp']:+.1f} pp"
        text += "."
    else:
        text += " Its label agreement with fp32 was not recorded (no variants.csv)."
    return text


def batching_change(run: Run) -> str | None:
    """Each batched service ÷ its twin: at the seed point, and on the mixed workload at its
    highest concurrency (where batches pad); the best multiple of the batch-1 ceiling."""
    table = batching.twin_table(run)
    if table.empty:
        return None

    def ratios(rows: pd.DataFrame) -> str:
        return ", ".join(
            f"{run.unit_label(str(r.service), str(r.variant))} {times(r.rps_ratio)}"
            for r in rows.itertuples(index=False)
            if math.isfinite(r.rps_ratio)
        )

    seed_rows = table[
        (table["payload"] == run.seed_payload) & (table["concurrency"] == run.seed_concurrency)
    ]
    text = "**Dynamic batching ÷ the same service unbatched** at the seed point: "
    text += ratios(seed_rows) or "not measured"
    mixed = table[table["payload"] == "mixed"]
    if not mixed.empty:
        top = int(mixed["concurrency"].max())
        text += f"; on the mixed workload (a different text per request, c={top}): "
        text += ratios(mixed[mixed["concurrency"] == top])
    best = seed_rows.dropna(subset=["x_batch1_ceiling"])
    if not best.empty:
        r = best.loc[best["x_batch1_ceiling"].idxmax()]
        text += (
            f". {run.unit_label(str(r['service']), str(r['variant']))} served "
            f"{times(r['x_batch1_ceiling'])} the batch-1 in-process ceiling"
        )
    return text + "."


def precision(run: Run, summary: pd.DataFrame) -> str | None:
    """The units whose seed-point ratios missed the run's precision target (the summary's
    ``converged``), and the points that stopped short of it (points.csv). None for a run
    that met it everywhere or records no target reached (no points.csv: ``converged`` empty)."""
    missed = summary[summary["converged"].astype(str).str.lower().isin(["false", "0"])]
    points = stability.unconverged(run)
    if missed.empty and points.empty:
        return None
    target = f"±{run.rounds.target_ci_pct:g} %"
    text = f"**Short of the precision target** (95 % intervals within {target})"
    if len(missed):
        names = [
            run.unit_label(str(s), str(v))
            for s, v in zip(missed["service"], missed["variant"], strict=True)
        ]
        # A long list says less than a count; the Paired ratios section names them all.
        who = (
            ", ".join(names) if len(names) <= MAX_NAMED else f"{len(names)} of {len(summary)} units"
        )
        text += f": at the seed point, the ratios of {who} did not converge"
    if len(points):
        why = points["stop"].astype(str).value_counts()
        stops = ", ".join(f"{n} by {reason}" for reason, n in why.items())
        text += (
            f"{';' if len(missed) else ':'} {len(points)} of {len(stability.points_table(run))} "
            f"points stopped before every ratio converged ({stops}); their intervals say how "
            "far to trust them"
        )
    return text + "."


def answer(run: Run, summary: pd.DataFrame) -> str:
    """The short answer as markdown bullets, from the run's own numbers."""
    bullets = [fastest(run, summary), where_model_dominates(run, summary)]
    variants = factors.summary_variants(summary)
    bullets += [variant_change(run, summary, v) for v in variants if v != BASE_VARIANT]
    bullets.append(batching_change(run))
    bullets.append(precision(run, summary))
    unstable = summary["unstable"].astype(str).str.lower().isin(["true", "1"])
    if unstable.any():
        names = ", ".join(
            run.unit_label(str(s), str(v))
            for s, v in zip(
                summary.loc[unstable, "service"],
                summary.loc[unstable, "variant"],
                strict=True,
            )
        )
        bullets.append(
            f"**Read with care**: {int(unstable.sum())} of {len(summary)} seed-point measurements "
            f"spread over {run.unstable_pct:g} % across rounds ({names})."
        )
    return "\n".join(f"- {b}" for b in bullets if b)
