"""What moves throughput: the factors one run measured at the seed point, side by side.

A service's Requests/sec changes with two choices the study varies: the **language** of the
service (each service against its baseline, e.g. native Rust ÷ Python) and the model
**variant** it serves (e.g. int8 ÷ fp32). Both are measured in the same run, on the same
machine, in the same rotated order, so their ratios compare:

* :func:`throughput_factors` - one row per measured factor (tidy).
* :func:`factor_table` - the same as one row per service (and per in-process loop), one
  column per factor: the report's and the README's table.
* :func:`faithfulness` - variants.csv: what each variant gives up (labels, scores, accuracy)
  for its speed.

The factors multiply exactly: service·v ÷ baseline·fp32 = (service ÷ baseline, fp32) ×
(v ÷ fp32 of the service). Every function takes a summary (``summary.csv`` rows, one per
service x variant) and the run's service facts, so published summaries work too; given the
seed point's paired ratios (``ratios.csv``, :func:`servebench.analysis.tables.ratios`), the
language, variant and batching factors are those paired estimates, with their 95 %
intervals (``ci_low``/``ci_high``), instead of ratios of medians.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd

from servebench import config
from servebench.analysis import inprocess, stats
from servebench.analysis import ratios as paired_ratios
from servebench.rundir.reader import BASE_VARIANT, Run

#: Names of the factors, in the order the tables show them.
LANGUAGE, VARIANT, IN_PROCESS, BOTH = "language", "variant", "variant in process", "both"
BATCHING = "batching"
#: The factors that are paired ratios of ratios.csv, and their ``kind`` there.
PAIRED_KIND = {
    LANGUAGE: "baseline", VARIANT: "variant", BATCHING: "batching",
    IN_PROCESS: "in_process_variant",
}  # fmt: skip
FACTOR_COLUMNS = [
    "factor", "service", "inference", "variant", "compared", "value", "reference", "ratio",
    "ci_low", "ci_high", "unstable",
]  # fmt: skip
FAITHFULNESS_COLUMNS = [
    "variant", "quantization", "isa", "onnx_mb", "onnx_vs_fp32", "sentences", "label_agreement",
    "max_abs_score_diff", "held_out_accuracy", "fp32_held_out_accuracy", "accuracy_change_pp",
    "batch_max_abs_diff", "batch_label_flips", "batch_invariant",
]  # fmt: skip


def summary_variants(summary: pd.DataFrame) -> list[str]:
    """The summary's variants, fp32 first, then the study's known order, then the rest."""
    present = list(dict.fromkeys(summary["variant"].astype(str)))
    known = [v for v in dict.fromkeys([BASE_VARIANT, *config.VARIANTS]) if v in present]
    return known + sorted(set(present) - set(known))


def _row(factor: str, compared: str, a: pd.Series, b: pd.Series, **keys: Any) -> dict[str, Any]:
    """One factor: ``a``'s measure over ``b``'s (summary rows; ``value`` is their rps)."""
    unstable = bool(a.get("unstable", False)) or bool(b.get("unstable", False))
    return {
        "factor": factor,
        "compared": compared,
        "value": float(a["value"]),
        "reference": float(b["value"]),
        "ratio": stats.ratio(a["value"], b["value"]),
        "ci_low": math.nan,
        "ci_high": math.nan,
        "unstable": unstable,
        **keys,
    }


def throughput_factors(
    summary: pd.DataFrame, facts: pd.DataFrame, ratios: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every factor of Requests/sec the summary measured, one row each (columns
    :data:`FACTOR_COLUMNS`).

    * ``language``: each service ÷ its baseline, both serving ``variant`` (one row per
      variant: does the language's gain survive a cheaper model?).
    * ``variant``: each service serving ``variant`` ÷ the same service serving fp32.
    * ``variant in process``: the in-process ceiling of each inference kind (``inference``)
      on ``variant`` ÷ on fp32 (from ``ceiling_rps``): the model's own speed-up, no HTTP.
    * ``both``: each service serving ``variant`` ÷ its baseline serving fp32.
    * ``batching``: each batched service ÷ its unbatched twin, both serving ``variant``.

    ``value``/``reference`` are the two Requests/sec (ceilings for in-process rows),
    ``ratio`` = value / reference, ``unstable`` when either side's rounds spread beyond the
    run's threshold. Services in the summary's order, variants fp32 first.

    ``ratios``: the seed point's rows of ratios.csv. With them the language, variant,
    in-process variant and batching ``ratio`` is the paired estimate (the geometric mean
    of the rounds' ratios, which can differ a little from value ÷ reference) with its
    interval ``ci_low``/``ci_high`` (NaN otherwise), and ``both`` is language (fp32) ×
    variant, so the factors still multiply exactly.
    """
    frame = summary.assign(variant=summary["variant"].astype(str), value=summary["rps"])
    rows = frame.set_index(["service", "variant"], drop=False)
    variants = summary_variants(summary)
    others = [v for v in variants if v != BASE_VARIANT]
    services = list(dict.fromkeys(frame["service"].astype(str)))
    label = dict(zip(frame["service"], frame["label"], strict=False))
    baseline = {s: str(facts.at[s, "baseline"]) if s in facts.index else "" for s in services}
    kind = {s: str(facts.at[s, "inference"]) if s in facts.index else "" for s in services}
    twin = {
        s: str(facts.at[s, "twin"]) if s in facts.index and "twin" in facts else ""
        for s in services
    }
    # Each factor of a service: the variants it is measured for, and the unit it divides by.
    specs: list[tuple[str, list[str], Callable[[str, str], tuple[str, str]]]] = [
        (LANGUAGE, variants, lambda s, v: (baseline[s], v)),
        (VARIANT, others, lambda s, v: (s, BASE_VARIANT)),
        (BOTH, others, lambda s, v: (baseline[s], BASE_VARIANT)),
        (BATCHING, variants, lambda s, v: (twin[s], v)),
    ]
    out: list[dict[str, Any]] = []
    for factor, measured, reference in specs:
        for v in measured:
            for s in services:
                ref = reference(s, v)
                if not ref[0] or (s, v) not in rows.index or ref not in rows.index:
                    continue  # a baseline has no language factor; an unmeasured unit none
                text = f"{label[s]} · {v} ÷ {label[ref[0]]} · {ref[1]}"
                a, b = rows.loc[(s, v)], rows.loc[ref]
                out.append(_row(factor, text, a, b, service=s, inference=kind[s], variant=v))
        if factor == VARIANT:
            out += _in_process(frame, facts, others)
    tidy = pd.DataFrame(out, columns=FACTOR_COLUMNS)
    return tidy if ratios is None else _paired(tidy, ratios)


def _paired(tidy: pd.DataFrame, ratios: pd.DataFrame) -> pd.DataFrame:
    """The factors with the paired estimates and intervals of one point's ``ratios``."""
    if ratios.empty:
        return tidy
    found = ratios.set_index(["kind", "service", "variant"])
    if found.index.has_duplicates:
        raise ValueError("ratios must be one point's rows (ratios.at_point)")
    tidy = tidy.copy()
    interval = ["ratio", "ci_low", "ci_high"]
    for i, r in tidy.iterrows():
        # an in-process row names no service: its ratios name it by its loop
        unit = inprocess.loop_id(r["inference"]) if r["factor"] == IN_PROCESS else r["service"]
        key = (PAIRED_KIND.get(str(r["factor"]), ""), unit, r["variant"])
        if key in found.index:
            tidy.loc[i, interval] = found.loc[key, paired_ratios.INTERVAL_COLUMNS].to_numpy(float)
    ratio = tidy.set_index(["factor", "service", "variant"])["ratio"]
    for i, r in tidy[tidy["factor"] == BOTH].iterrows():
        language, variant = (
            (LANGUAGE, r["service"], BASE_VARIANT),
            (VARIANT, *r[["service", "variant"]]),
        )
        if language in ratio.index and variant in ratio.index:
            tidy.at[i, "ratio"] = ratio[language] * ratio[variant]
    return tidy


def _in_process(frame: pd.DataFrame, facts: pd.DataFrame, others: list[str]) -> list[dict]:
    """Each inference kind's ceiling on a variant ÷ on fp32 (the summary's ``ceiling_rps``
    of any service the kind bounds: they all carry the same ceiling)."""
    if "ceiling_rps" not in frame or "inference" not in facts:
        return []
    kinds = frame.assign(inference=frame["service"].map(facts["inference"]).fillna(""))
    kinds = kinds[(kinds["inference"] != "") & kinds["ceiling_rps"].notna()]
    ceiling = kinds.groupby(["inference", "variant"], sort=False)["ceiling_rps"].first()
    out = []
    for kind in dict.fromkeys(kinds["inference"]):
        for v in others:
            if (kind, v) in ceiling.index and (kind, BASE_VARIANT) in ceiling.index:
                a = pd.Series({"value": ceiling[(kind, v)]})
                b = pd.Series({"value": ceiling[(kind, BASE_VARIANT)]})
                text = f"{kind} in process · {v} ÷ fp32"
                out.append(_row(IN_PROCESS, text, a, b, service="", inference=kind, variant=v))
    return out


def factor_table(
    summary: pd.DataFrame,
    facts: pd.DataFrame,
    ratios: pd.DataFrame | None = None,
    with_ci: bool = False,
) -> pd.DataFrame:
    """:func:`throughput_factors` as one row per service (its label) and per in-process loop
    ("python in process"), one column per factor, each cell a ratio (NaN: not measured,
    e.g. a baseline has no language factor):

    ``service ÷ baseline · fp32`` [, ``service ÷ baseline · int8``, ``int8 ÷ fp32``,
    ``service · int8 ÷ baseline · fp32``] - one set per non-fp32 variant of the run.

    ``ratios`` as for :func:`throughput_factors`; ``with_ci`` writes each cell as text,
    "1.28× [1.22–1.34]" (:func:`servebench.analysis.ratios.formatted`; '–' not measured).
    """
    tidy = throughput_factors(summary, facts, ratios)
    label = dict(zip(summary["service"], summary["label"], strict=False))
    columns = {(LANGUAGE, v): f"service ÷ baseline · {v}" for v in summary_variants(summary)}
    for v in summary_variants(summary)[1:]:
        columns[(VARIANT, v)] = f"{v} ÷ fp32"
        columns[(IN_PROCESS, v)] = f"{v} ÷ fp32"
        columns[(BOTH, v)] = f"service · {v} ÷ baseline · fp32"
    for v in summary_variants(summary):
        columns[(BATCHING, v)] = f"batched ÷ twin · {v}"
    names = [label[s] for s in dict.fromkeys(summary["service"])]
    kinds = tidy.loc[tidy["factor"] == IN_PROCESS, "inference"]
    names += [f"{k} in process" for k in dict.fromkeys(kinds)]
    present = set(zip(tidy["factor"], tidy["variant"], strict=True))
    wanted = [c for key, c in columns.items() if key[0] != BATCHING or key in present]
    table = pd.DataFrame(math.nan, index=names, columns=list(dict.fromkeys(wanted)))
    if with_ci:
        table = table.astype(object).map(paired_ratios.formatted)
    for r in tidy.itertuples(index=False):
        name = f"{r.inference} in process" if r.factor == IN_PROCESS else label[r.service]
        cell = paired_ratios.formatted(r.ratio, r.ci_low, r.ci_high) if with_ci else r.ratio
        table.at[name, columns[(r.factor, r.variant)]] = cell
    table.index.name = "ratio of req/s"
    return table


def faithfulness(run: Run) -> pd.DataFrame:
    """variants.csv for the report: one row per variant (display order) with its
    quantization, model size (and ÷ fp32's), label agreement with fp32, largest score
    difference, held-out accuracy beside fp32's (change in percentage points), and how far
    batch-mates move its answers (empty for a run from before that was measured).
    Empty (columns :data:`FAITHFULNESS_COLUMNS`) when the run has no variants.csv."""
    if run.variants is None or run.variants.empty:
        return pd.DataFrame(columns=FAITHFULNESS_COLUMNS)
    df = run.variants.copy()
    df["variant"] = df["variant"].astype(str)
    for column in FAITHFULNESS_COLUMNS:
        if column not in df:
            df[column] = math.nan
    fp32_mb = df.loc[df["variant"] == BASE_VARIANT, "onnx_mb"]
    df["onnx_vs_fp32"] = df["onnx_mb"] / (float(fp32_mb.iloc[0]) if len(fp32_mb) else math.nan)
    df["accuracy_change_pp"] = (df["held_out_accuracy"] - df["fp32_held_out_accuracy"]) * 100
    for column in ("quantization", "isa"):
        df[column] = df[column].fillna("").astype(str)
    return run.in_display_order(df[FAITHFULNESS_COLUMNS], ["variant"])


def faithfulness_shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`faithfulness` as the report prints it: headed in words, no index, accuracies
    in %, sizes and changes rounded, batch invariance as yes/no."""

    def pct(column: str) -> pd.Series:
        return (table[column] * 100).round(1)

    view = pd.DataFrame(
        {
            "model": table["variant"],
            "quantization": table["quantization"],
            "instruction set": table["isa"],
            "ONNX MB": table["onnx_mb"].round(1),
            "size ÷ fp32": table["onnx_vs_fp32"].round(2),
            "sentences": table["sentences"],
            "label agreement with fp32, %": pct("label_agreement"),
            "largest score change": table["max_abs_score_diff"].round(4),
            "held-out accuracy, %": pct("held_out_accuracy"),
            "fp32's held-out accuracy, %": pct("fp32_held_out_accuracy"),
            "accuracy change, pp": table["accuracy_change_pp"].round(1),
            "largest score change from batch-mates": table["batch_max_abs_diff"].round(4),
            "labels flipped by batch-mates": table["batch_label_flips"],
            "batch-invariant": table["batch_invariant"].map(paired_ratios.yes_no),
        }
    )
    return view.reset_index(drop=True)
