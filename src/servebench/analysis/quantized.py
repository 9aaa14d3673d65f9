"""int8, dynamic or static: what each quantized variant buys, what it gives up, and which a
batched service should serve.

* :func:`variant_table` - one row per variant: model size, faithfulness to fp32 (labels,
  held-out accuracy), how far batch-mates move its answers, each inference loop's items/s at
  batch 1 and each batched service's batch path at its best batch size (in process, the
  seed payload).
* :func:`served_table` - service x variant at the seed point: Requests/sec, p99 and the
  paired ratio to the same service's fp32 with its 95 % interval.
* :func:`advice` - one or two sentences from those numbers: the quantized variant a batched
  service should serve (the fastest whose answers do not depend on batch-mates) and what it
  costs against the fastest one that does.

Nothing here names a variant or a service: a run of other variants gets its own sentences.
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import batching, factors, ratios
from servebench.rundir import facts
from servebench.rundir.reader import BASE_VARIANT, Run

SERVED_COLUMNS = [
    "service", "variant", "rps", "p99_s", "vs_fp32", "vs_fp32_ci_low", "vs_fp32_ci_high",
]  # fmt: skip


def _quantized(faith: pd.DataFrame) -> pd.DataFrame:
    return faith[faith["quantization"].fillna("none").astype(str) != "none"]


def variant_table(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """Variants as rows (display order), faithfulness beside in-process speed."""
    faith = factors.faithfulness(run).set_index("variant")
    out = pd.DataFrame(index=pd.Index(run.variants_in_order(), name="variant"))
    shown = {
        "onnx_mb": "model MB",
        "label_agreement": "label agreement",
        "accuracy_change_pp": "held-out accuracy Δ pp",
        "batch_max_abs_diff": "max Δscore from batch-mates",
        "batch_label_flips": "labels flipped by batch-mates",
        "batch_invariant": "batch-invariant",
    }
    for column, name in shown.items():
        out[name] = faith[column].reindex(out.index) if column in faith else math.nan
    out["quantization"] = faith["quantization"].reindex(out.index) if len(faith) else ""
    seed = summary.assign(variant=summary["variant"].astype(str))
    if "ceiling_rps" in seed:
        kinds = seed["service"].map(lambda s: str(run.fact(s, "inference")))
        loops = seed.assign(kind=kinds).dropna(subset=["ceiling_rps"])
        loops = loops[loops["kind"] != ""]
        for kind, rows in loops.groupby("kind", sort=False):
            per_variant = rows.groupby("variant")["ceiling_rps"].first()
            out[f"{kind} loop, batch 1 (items/s)"] = per_variant.reindex(out.index)
    paths = batching.batch_ceiling(run)
    for service, rows in paths.groupby("service", sort=False):
        best = rows.loc[rows.groupby("variant")["items_per_s"].idxmax()].set_index("variant")
        name = f"{run.label(str(service))} batch path, best"
        out[f"{name} (items/s)"] = best["items_per_s"].reindex(out.index)
        out[f"{name} (batch)"] = best["batch_size"].reindex(out.index)
    return out


def served_table(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """Each service serving each variant at the seed point, with its paired ÷ fp32; a service
    measured with fp32 alone (configs/default.yaml `base_variant_only`) has nothing to compare
    and is left out."""
    frame = summary.assign(variant=summary["variant"].astype(str))
    frame = frame[frame.groupby("service")["variant"].transform("nunique") > 1]
    out = pd.DataFrame(
        {
            "service": frame["service"],
            "variant": frame["variant"],
            "rps": frame["rps"],
            "p99_s": frame["p99_s"],
            "vs_fp32": frame.get("variant_factor", math.nan),
            "vs_fp32_ci_low": frame.get("variant_factor_ci_low", math.nan),
            "vs_fp32_ci_high": frame.get("variant_factor_ci_high", math.nan),
        }
    )
    return run.in_display_order(out[SERVED_COLUMNS], ["service", "variant"])


def advice(run: Run, summary: pd.DataFrame) -> str | None:
    """Which quantized variant a batched service should serve, from the run's numbers; None
    when the run has no quantized variant measured for its batch invariance."""
    faith = factors.faithfulness(run)
    quantized = _quantized(faith).dropna(subset=["batch_invariant"])
    if quantized.empty:
        return None
    invariant = quantized[quantized["batch_invariant"].map(facts.truth)]
    moved = quantized[~quantized["batch_invariant"].map(facts.truth)]
    served = served_table(run, summary)
    batched = [s for s in batching.batched_services(run) if s in set(served["service"])]
    rps = served.set_index(["service", "variant"])["rps"]

    def fastest(variants: pd.Series) -> str | None:
        """The variant with the highest Requests/sec summed over the batched services."""
        totals = {v: sum(rps.get((s, v), math.nan) for s in batched) for v in variants.astype(str)}
        totals = {v: t for v, t in totals.items() if not math.isnan(t)}
        return max(totals, key=lambda v: totals[v]) if totals else None

    safe, risky = fastest(invariant["variant"]), fastest(moved["variant"])
    if safe is None:
        worst = moved.loc[moved["batch_max_abs_diff"].idxmax()]
        return (
            f"No quantized variant of this run is batch-invariant: a batched service serving "
            f"{worst['variant']} answers a request differently depending on its batch-mates "
            f"(up to {worst['batch_max_abs_diff']:.2g} of a score). Serve it unbatched, or "
            "serve fp32 batched."
        )
    text = f"A batched service should serve **{safe}**: its answers do not depend on batch-mates"
    if risky is None or not batched:
        return text + "."
    costs = [
        f"{run.label(s)} {rps[(s, safe)] / rps[(s, risky)]:.2f}×"
        for s in batched
        if (s, safe) in rps.index and (s, risky) in rps.index
    ]
    shift = moved.set_index("variant").loc[risky]
    text += (
        f", at {', '.join(costs)} the Requests/sec of {risky} at the seed point, whose answers "
        f"move by up to {shift['batch_max_abs_diff']:.2g} with their batch-mates. An unbatched "
        f"service has no batch-mates: {risky} is as safe there as {safe}, and "
    )
    unbatched = served[~served["service"].isin(batched) & (served["variant"] == risky)]
    factor = unbatched["vs_fp32"].dropna()
    text += (
        f"serves {factor.median():.2f}× fp32 (median over the unbatched services)."
        if len(factor)
        else f"its speed-up over {BASE_VARIANT} is in the table."
    )
    return text


def shown_variant_table(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`variant_table` formatted for the report (bools as yes/no, rounded)."""
    shown = table.copy()
    if "batch-invariant" in shown:
        shown["batch-invariant"] = shown["batch-invariant"].map(
            lambda v: "" if pd.isna(v) else ("yes" if facts.truth(v) else "no")
        )
    return shown.round(
        {
            "model MB": 1,
            "label agreement": 4,
            "held-out accuracy Δ pp": 1,
            **{c: 0 for c in shown if "items/s" in c},
        }
    )


def served_shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`served_table` as the report prints it: headed in words, no index, req/s to
    whole numbers, p99 in ms, the ratio to fp32 with its interval."""
    view = pd.DataFrame(
        {
            "service": table["service"].map(run.label),
            "model": table["variant"],
            "req/s": table["rps"].round(0),
            "p99 ms": (table["p99_s"] * 1e3).round(1),
            f"÷ {BASE_VARIANT} [95 % CI]": [
                ratios.formatted(r.vs_fp32, r.vs_fp32_ci_low, r.vs_fp32_ci_high)
                for r in table.itertuples(index=False)
            ],
        }
    )
    return view.reset_index(drop=True)
