"""Write a reference run's results into the README (between the RESULTS markers).

    python -m servebench.readme data/runs/latest

Numbers come from the run's summary.csv and metadata.json only (and its variants.csv, when
it served more than the fp32 model, its ratios.csv and points.csv, when it has them: the
intervals and the rounds); the run's summary and metadata are also copied to
data/reference/ so the README's table has its data beside it, and its figures to figures/
(the images the README shows). The seed's table and the tables beyond it show the fp32 model
(the seed's); each other variant gets a compact table and the factors of throughput.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from servebench import paths, pipeline, plots
from servebench.analysis import cost, decision, factors, ratios, seed, tables
from servebench.rundir.facts import truth
from servebench.rundir.reader import BASE_VARIANT, load_run, read_facts
from servebench.rundir.rounds import Rounds, read_rounds
from servebench.rundir.upgrade import read_summary

BEGIN, END = "<!-- RESULTS:BEGIN -->", "<!-- RESULTS:END -->"
#: The run's rendered report (servebench.rendering), published beside its data.
REPORT = "report.html"


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _num(value: float, digits: int = 1) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def machine_line(meta: dict) -> str:
    machine, pinning, versions = meta["machine"], meta["pinning"], meta["versions"]
    return (
        f"{machine['cpu_model']}, {machine['cores']} cores, {machine['memory_gb']} GB; "
        f"servers pinned to CPU {pinning['server_cpus']}, load generator to CPU "
        f"{pinning['loadgen_cpus']}; {pinning['workers']} worker × {pinning['threads']} "
        f"ONNX Runtime thread; onnxruntime {versions.get('onnxruntime')}, "
        f"Python {versions.get('python')}, {versions.get('rustc')}"
    )


def seed_style(
    summary: pd.DataFrame, facts: pd.DataFrame, variant: str = BASE_VARIANT
) -> pd.DataFrame:
    table = seed.seed_table(summary, facts, variant).reset_index(names="")
    for column in table.columns[1:]:
        digits = 1 if column.startswith("Difference") else 4
        table[column] = [
            f"{v:+.1f}%" if column.startswith("Difference") else _num(v, digits)
            for v in table[column]
        ]
    return table


def _vs_baseline(row: Any) -> dict[str, str]:
    """The paired ratio to the baseline with its interval, for a summary that has it."""
    if not hasattr(row, "ratio"):
        return {}
    low, high = getattr(row, "ratio_ci_low", math.nan), getattr(row, "ratio_ci_high", math.nan)
    return {"÷ baseline [95 % CI]": ratios.formatted(row.ratio, low, high)}


def rigor_table(summary: pd.DataFrame, priced: cost.Price | None = None) -> pd.DataFrame:
    """Beyond the seed's table, per service; ``$ per M req`` is the CPU a request used at the
    given price (analysis/cost.py)."""

    def dollars(cpu_s_per_req: float) -> float:
        return cost.usd_per_million(cpu_s_per_req, priced) if priced else math.nan

    rows = []
    for r in summary.itertuples(index=False):
        rows.append(
            {
                "service": r.label,
                "req/s (min–max)": f"{r.rps:.0f} ({r.rps_min:.0f}–{r.rps_max:.0f})",
                **_vs_baseline(r),
                "p50 ms": _num(r.p50_s * 1000),
                "p99 ms": _num(r.p99_s * 1000),
                "efficiency": f"{r.efficiency:.0%}" if not math.isnan(r.efficiency) else "–",
                "overhead ms": _num(r.overhead_ms, 2),
                "CPU ms/req": _num(r.cpu_s_per_req * 1000, 2),
                "peak RSS MB": _num(r.peak_rss_mb, 0),
                "cold start s": _num(r.cold_start_s, 2),
                "size MB": _num(r.size_mb, 0),
                "$ per M req": _num(dollars(r.cpu_s_per_req), 3),
                "errors": int(r.errors),
            }
        )
    return pd.DataFrame(rows)


def variant_table(summary: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The compact view of one non-fp32 variant: per service its req/s, its factor over the
    same service's fp32, its difference from its baseline (same variant), latency, efficiency."""
    rows = []
    for r in seed.of_variant(summary, variant).itertuples(index=False):
        rows.append(
            {
                "service": r.label,
                "req/s (min–max)": f"{r.rps:.0f} ({r.rps_min:.0f}–{r.rps_max:.0f})",
                f"× {BASE_VARIANT}": f"×{_num(r.variant_factor, 2)}" + _interval(r),
                "vs baseline": "–" if math.isnan(r.difference_pct) else f"{r.difference_pct:+.1f}%",
                "p50 ms": _num(r.p50_s * 1000),
                "p99 ms": _num(r.p99_s * 1000),
                "efficiency": f"{r.efficiency:.0%}" if not math.isnan(r.efficiency) else "–",
                "errors": int(r.errors),
            }
        )
    return pd.DataFrame(rows)


def _interval(row: Any) -> str:
    """' [2.30–2.46]': the variant factor's 95 % interval ('' when there is none)."""
    low = getattr(row, "variant_factor_ci_low", math.nan)
    high = getattr(row, "variant_factor_ci_high", math.nan)
    return "" if pd.isna(low) or pd.isna(high) else f" [{low:.2f}–{high:.2f}]"


def seed_ratios(run_dir: Path, parameters: dict) -> pd.DataFrame | None:
    """ratios.csv's rows at the seed point, or None when the run directory has none."""
    path = run_dir / "ratios.csv"
    if not path.is_file():
        return None
    return ratios.at_point(pd.read_csv(path), parameters["payload"], parameters["concurrency"])


def factor_markdown(
    summary: pd.DataFrame, facts: pd.DataFrame, paired: pd.DataFrame | None = None
) -> pd.DataFrame:
    """:func:`servebench.analysis.factors.factor_table` with its ratios written 1.23×, and
    their 95 % intervals "1.23× [1.20–1.26]" when the seed point's ratios are given."""
    return factors.factor_table(summary, facts, paired, with_ci=True).reset_index()


def _share(value: float) -> str:
    return "–" if pd.isna(value) else f"{float(value):.1%}"


def faithfulness_line(run_dir: Path, variant: str) -> str:
    """What a variant gives up, from variants.csv ('' when the run has none)."""
    path = run_dir / "variants.csv"
    if not path.is_file():
        return ""
    rows = pd.read_csv(path).set_index("variant")
    if variant not in rows.index:
        return ""
    r = rows.loc[variant]
    quantization = "" if pd.isna(r["quantization"]) else str(r["quantization"])
    parts = [quantization] if quantization and quantization != "none" else []
    parts += [f"for {r['isa']}"] if not pd.isna(r["isa"]) and r["isa"] else []
    size = f"model {_num(r['onnx_mb'], 0)} MB"
    fp32_mb = rows["onnx_mb"].get(BASE_VARIANT, math.nan)
    if not pd.isna(fp32_mb) and fp32_mb:
        size += f", {float(r['onnx_mb']) / float(fp32_mb):.2f}× fp32's"
    return (
        f"{variant} ({' '.join(parts) or 'not quantized'}; {size}): labels agree with fp32 on "
        f"{_share(r['label_agreement'])} of {r['sentences']} sentences, largest score "
        f"difference {float(r['max_abs_score_diff']):.3g}, held-out accuracy "
        f"{_share(r['held_out_accuracy'])} (fp32 {_share(r['fp32_held_out_accuracy'])})."
    )


def variant_sections(
    run_dir: Path, summary: pd.DataFrame, facts: pd.DataFrame, paired: pd.DataFrame | None = None
) -> list[str]:
    """The README lines for the variants beyond fp32: a compact table each, what it gives
    up, and the factor table (none for a run of fp32 alone)."""
    others = factors.summary_variants(summary)[1:]
    if not others:
        return []
    lines = []
    for variant in others:
        lines += [
            f"**The {variant} model** (× {BASE_VARIANT} = req/s ÷ the same service's with "
            f"fp32; vs baseline: in {variant} too). " + faithfulness_line(run_dir, variant),
            "",
            markdown_table(variant_table(summary, variant)),
            "",
        ]
    lines += [
        "**What moves throughput** (ratios of req/s at the seed point, one run: the language "
        "is each service ÷ its baseline, the variant ÷ fp32 for the same service or in-process "
        "loop, and both together ÷ the baseline with fp32; [ ]: 95 % interval of the paired "
        "ratio):",
        "",
        markdown_table(factor_markdown(summary, facts, paired)),
        "",
    ]
    return lines


def payload_table(run_dir: Path, per_config: pd.DataFrame | None = None) -> pd.DataFrame:
    """Requests/sec at the highest concurrency the payload was measured at (the seed's for
    the seed payload and the mixed workload; the study crosses the seed point, so the other
    payloads may have c=1 only) and p50 at concurrency 1, per payload × service (fp32).
    ``per_config`` replaces the run's own rows (a test's subset)."""
    run = load_run(run_dir)
    pc = tables.per_config(run) if per_config is None else per_config
    pc = pc[pc["variant"] == BASE_VARIANT]
    services = run.services_in_order(pc["service"])
    rows = []
    for payload in run.payloads_in_order(pc["payload"]):
        at = pc[pc["payload"] == payload].set_index(["service", "concurrency"])
        top = int(pc.loc[pc["payload"] == payload, "concurrency"].max())
        row = {"payload": f"`{payload}` (req/s at c={top})"}
        for s in services:
            rps = at["rps"].get((s, top), math.nan)
            p50 = at["p50_s"].get((s, 1), math.nan)
            row[run.label(s)] = f"{_num(rps, 0)} req/s · {_num(p50 * 1000)} ms"
        rows.append(row)
    return pd.DataFrame(rows)


def decision_lines(run_dir: Path, priced: cost.Price | None) -> list[str]:
    """The decision table from the run's decision.csv (none without one)."""
    path = run_dir / "decision.csv"
    if not path.is_file():
        return []
    table = pd.read_csv(path)
    best = decision.fastest(table)
    if best.empty:
        return []
    labels, _ = read_facts(run_dir, best["service"])
    rows = [
        {
            "p99 ≤": f"{r.bound_ms:g} ms",
            "fastest (and cheapest)": f"{labels.at[r.service, 'label']} · {r.variant}",
            "open-loop req/s (next missed)": f"{r.rate:.0f} ({_num(r.missed_rate, 0)})",
            "closed-loop req/s [95 %]": f"{r.closed_rps:.0f} [{_num(r.closed_rps_ci_low, 0)}–"
            f"{_num(r.closed_rps_ci_high, 0)}]",
            "$ per M req": _num(r.usd_per_million, 3),
            "answers move with batch-mates": "yes" if truth(r.batch_dependent) else "no",
        }
        for r in best.itertuples(index=False)
    ]
    searched = len(table.drop_duplicates(["service", "variant"]))
    where = f" at {priced.describe()}" if priced else ""
    return [
        f"**Which stack for which latency bound** (open loop, vegeta at fixed rates; the "
        f"fastest of the {searched} units searched, a core kept for its rate{where}):",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]


def seed_difference_text(summary: pd.DataFrame, facts: pd.DataFrame) -> str:
    """What the seed table's Difference compares, e.g. 'best Rust vs Python'."""
    pair = seed.seed_pair(summary, facts)
    if pair is None:
        return "no service of another language to compare"
    base = summary.loc[summary["service"] == pair[0], "label"].iloc[0]
    return f"best {str(facts.at[pair[1], 'language']).capitalize()} vs {base}"


def how_measured(rounds: Rounds) -> str:
    """How the run measured each point, in the README's words."""
    return (
        f"every service and variant kept warm and interleaved in short bursts, {rounds.text} "
        "per point in counterbalanced orders, until every paired ratio's 95 % interval was "
        f"within ±{rounds.target_ci_pct:g} % (or the point's rounds or time ran out); medians "
        "of the rounds, ratios paired per round"
    )


def results_markdown(run_dir: Path, figures_prefix: str = "figures") -> str:
    meta = json.loads((run_dir / "metadata.json").read_text())
    summary = read_summary(run_dir)
    facts, _ = read_facts(run_dir, summary["service"])
    fp32 = seed.of_variant(summary)
    # Said only when there is another variant, so a run of fp32 alone reads as before.
    model_note = ", fp32 model" if len(factors.summary_variants(summary)) > 1 else ""
    parameters = meta["parameters"]
    rounds = read_rounds(run_dir, parameters)
    model = (meta.get("model") or {}).get("id") or parameters.get("model_id")
    seed_point = (
        f"`hey -n {parameters['n_requests']} -c {parameters['concurrency']}`, "
        f"payload `{parameters['payload']}`"
    )
    lines = [
        f"### Reference run `{meta['run_id']}` (model `{model}`)",
        "",
        f"Machine: {machine_line(meta)}. Commit `{(meta['git'].get('commit') or '?')[:10]}`. "
        f"Seed point: {seed_point}; {how_measured(rounds)}. Full data: "
        "[`data/reference/`](data/reference/)"
        + (
            "; its rendered report, one self-contained page to open in a browser: "
            "[`data/reference/report.html`](data/reference/report.html)."
            if (run_dir / REPORT).is_file()
            else "."
        ),
        "",
        f"**The seed's table, on this machine** (seconds{model_note}; Difference: "
        f"{seed_difference_text(summary, facts)}):",
        "",
        markdown_table(seed_style(summary, facts)),
        "",
        "**Beyond the seed** (efficiency = req/s ÷ in-process ceiling on the same CPU"
        f"{model_note}; overhead = median latency at concurrency 1 − in-process median):",
        "",
        markdown_table(rigor_table(fp32, cost.price(parameters))),
        "",
        *decision_lines(run_dir, cost.price(parameters)),
        *variant_sections(run_dir, summary, facts, seed_ratios(run_dir, parameters)),
        f"**Per payload** (median req/s at the highest concurrency measured for the payload · "
        f"median latency at c=1{model_note}; payload texts in [`data/payloads/`](data/payloads/)):",
        "",
        markdown_table(payload_table(run_dir)),
        "",
        *[f"![{name}]({figures_prefix}/{name}.png)" for name in plots.FIGURES],
    ]
    return "\n".join(lines)


#: A quoted absolute path into a project's model store: this checkout's, or the one a cached
#: model export was made in (its export.json keeps the paths it was made with).
_MODEL_STORE = re.compile(r'"/[^"]*?/(data/models/)')


def project_relative(text: str) -> str:
    """Metadata text with this project's paths, and any checkout's model store, relative to
    the project ('data/models/minilm-sentiment')."""
    return _MODEL_STORE.sub(r'"\1', text.replace(f"{paths.ROOT}/", ""))


def update_readme(
    run_dir: Path,
    readme: Path = paths.ROOT / "README.md",
    reference: Path = paths.DATA / "reference",
    figures: Path = paths.FIGURES,
) -> None:
    """Fill the README's results from run_dir; copy its data to reference/, figures to figures/."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} lacks the {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{results_markdown(run_dir)}\n{END}{tail}")
    reference.mkdir(parents=True, exist_ok=True)
    for name in (
        "summary.csv", "per_config.csv", "ratios.csv", "points.csv", "metadata.json",
        "services.csv", "variants.csv", "cost.csv", "decision.csv", "peak_share.csv",
    ):  # fmt: skip
        if not (run_dir / name).exists():
            continue
        if name == "metadata.json":  # this machine's project path means nothing to a reader
            (reference / name).write_text(project_relative((run_dir / name).read_text()))
        else:
            shutil.copy2(run_dir / name, reference / name)
    # The report is one self-contained page (its figures inlined), readable without a run.
    if (run_dir / REPORT).is_file():
        shutil.copy2(run_dir / REPORT, reference / REPORT)
    # The README's images must be this run's.
    pipeline.publish_figures(run_dir, figures)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    update_readme(args.run_dir.resolve())
    print(f"README.md updated from {args.run_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
