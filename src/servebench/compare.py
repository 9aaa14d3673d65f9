"""Two run directories side by side: per service and model variant, rps, p50 and p99 of
each and the change.

    python -m servebench.compare RUN_A RUN_B [--out DIR]

prints the table and what differs in the two runs' metadata (machine, pinning, versions,
parameters, git), and writes ``compare.csv``, ``compare_metadata.csv`` and
``compare.png`` into DIR (default: ``figures/``). Change % is ``(B - A) / A * 100``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from servebench import paths
from servebench.analysis import stats, tables
from servebench.analysis.factors import summary_variants
from servebench.rundir.reader import RunDataError, load_run, read_facts
from servebench.rundir.upgrade import read_summary

METRICS: dict[str, str] = {"rps": "requests/sec", "p50_s": "p50 latency", "p99_s": "p99 latency"}
#: Each unit's paired ratio to its baseline with its 95 % interval.
RATIO = ["ratio", "ratio_ci_low", "ratio_ci_high"]


def _summary(run_dir: str | Path) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """(summary, run id, service facts): recomputed from raw data, else read from
    summary.csv (published data such as data/reference/ keeps no raw files, and a run made
    before interleaving is read no other way; :mod:`servebench.rundir.upgrade`)."""
    path = Path(run_dir)
    try:
        run = load_run(path)
        summary = tables.build_summary(run, write=False)
        return summary, run.metadata.get("run_id", path.name), run.facts
    except RunDataError:
        if not (path / "summary.csv").is_file():
            raise
        md_path = path / "metadata.json"
        md = json.loads(md_path.read_text()) if md_path.is_file() else {}
        summary = read_summary(path)
        facts, _ = read_facts(path, summary["service"])
        return summary, md.get("run_id", path.name), facts


def compare_runs(run_a: str | Path, run_b: str | Path) -> pd.DataFrame:
    """Per service and variant (seed payload, seed concurrency): rps, p50, p99 of A and B
    and change %.

    Columns: ``service, variant, label, rps_a, rps_b, rps_change_pct, p50_s_a, p50_s_b,
    p50_s_change_pct, p99_s_a, p99_s_b, p99_s_change_pct, spread_pct_a, spread_pct_b,
    unstable_a, unstable_b, errors_a, errors_b, rps_change_beyond_spread`` (the rps change
    exceeds both runs' own spread across rounds, i.e. it is larger than the noise we saw), then
    ``ratio_a, ratio_ci_low_a, ratio_ci_high_a`` and the same for B (the unit's paired ratio
    to its baseline and its 95 % interval), ``ratio_change_pct`` and ``ratio_cis_overlap``
    (the two intervals share a value: the runs agree within their precision).
    A (service, variant) present in only one run has NaN on the other side. Rows follow the
    services' display order (run B's facts for services only B has), then the variants
    (fp32 first). The run ids are in
    ``df.attrs["run_a"]`` / ``df.attrs["run_b"]``, each service's colour in
    ``df.attrs["colors"]``.
    """
    sa, id_a, facts_a = _summary(run_a)
    sb, id_b, facts_b = _summary(run_b)
    facts = pd.concat([facts_a, facts_b[~facts_b.index.isin(facts_a.index)]])
    unit = ["service", "variant"]
    keep = [*unit, "label", *METRICS, "spread_pct", "unstable", "errors", *RATIO]
    merged = sa[keep].merge(sb[keep], on=unit, how="outer", suffixes=("_a", "_b"))
    merged["label"] = merged["label_a"].fillna(merged["label_b"])
    cols = [*unit, "label"]
    for m in METRICS:
        merged[f"{m}_change_pct"] = [
            stats.difference_pct(b, a)
            for a, b in zip(merged[f"{m}_a"], merged[f"{m}_b"], strict=True)
        ]
        cols += [f"{m}_a", f"{m}_b", f"{m}_change_pct"]
    cols += ["spread_pct_a", "spread_pct_b", "unstable_a", "unstable_b", "errors_a", "errors_b"]
    merged["rps_change_beyond_spread"] = [
        bool(abs(ch) > max(sa_, sb_)) if not any(map(pd.isna, (ch, sa_, sb_))) else False
        for ch, sa_, sb_ in zip(
            merged["rps_change_pct"], merged["spread_pct_a"], merged["spread_pct_b"], strict=True
        )
    ]
    cols.append("rps_change_beyond_spread")
    cols += [f"{c}_{side}" for side in "ab" for c in RATIO]
    merged["ratio_change_pct"] = [
        stats.difference_pct(b, a)
        for a, b in zip(merged["ratio_a"], merged["ratio_b"], strict=True)
    ]
    merged["ratio_cis_overlap"] = [
        bool(max(la, lb) <= min(ha, hb)) if not any(map(pd.isna, (la, ha, lb, hb))) else None
        for la, ha, lb, hb in zip(
            merged["ratio_ci_low_a"], merged["ratio_ci_high_a"],
            merged["ratio_ci_low_b"], merged["ratio_ci_high_b"], strict=True,
        )
    ]  # fmt: skip
    cols += ["ratio_change_pct", "ratio_cis_overlap"]
    rank = {
        "service": dict(zip(facts.index, facts["order"], strict=True)),
        "variant": {v: i for i, v in enumerate(summary_variants(merged))},
    }
    out = merged[cols].sort_values(unit, key=lambda c: c.map(rank[str(c.name)]), kind="stable")
    out = out.reset_index(drop=True)
    colors = dict(zip(facts.index, facts["color"], strict=True))
    out.attrs.update(run_a=str(id_a), run_b=str(id_b), colors=colors)
    return out


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list) else v
    return out


def compare_metadata(run_a: str | Path, run_b: str | Path) -> pd.DataFrame:
    """The metadata keys whose values differ between the runs (machine, versions, ...)."""
    out = []
    mds = []
    for r in (run_a, run_b):
        p = Path(r) / "metadata.json"
        mds.append(json.loads(p.read_text()) if p.is_file() else {})
    sections = ("machine", "pinning", "versions", "git", "model", "parameters")
    fa = _flatten({k: mds[0].get(k, {}) for k in sections})
    fb = _flatten({k: mds[1].get(k, {}) for k in sections})
    for key in sorted(set(fa) | set(fb)):
        a, b = fa.get(key), fb.get(key)
        if a != b:
            out.append({"key": key, "run_a": a, "run_b": b})
    return pd.DataFrame(out, columns=["key", "run_a", "run_b"])


def fig_compare(table: pd.DataFrame, out_dir: str | Path | Sequence[str | Path]) -> Path:
    """Grouped bars per metric: run A (pale) and run B (solid) for every service and
    variant (hatched: not fp32)."""
    from matplotlib.figure import Figure

    from servebench.plots import style

    fig = Figure(figsize=(13, 4.8), layout="constrained")
    axes = fig.subplots(1, len(METRICS), squeeze=False)[0]
    fig.suptitle(
        f"Run A {table.attrs.get('run_a', 'A')}  vs  run B "
        f"{table.attrs.get('run_b', 'B')}\n(pale: A, solid: B; label: change B vs A)",
        fontsize=10,
    )
    given = table.attrs.get("colors") or {}
    services = table["service"].astype(str)
    colors = style.service_colors(
        pd.DataFrame({"color": [given.get(s, "") for s in services]}, services)
    )
    variants = table["variant"].astype(str)
    several = variants.nunique() > 1
    labels = [f"{t} · {v}" if several else t for t, v in zip(table["label"], variants, strict=True)]
    x = np.arange(len(table))
    for ax, (m, name) in zip(axes, METRICS.items(), strict=True):
        scale = 1e3 if m.endswith("_s") else 1.0
        a = table[f"{m}_a"].to_numpy(float) * scale
        b = table[f"{m}_b"].to_numpy(float) * scale
        look = {
            "color": [colors[s] for s in services],
            "hatch": [style.variant_style(v).hatch for v in variants],
            "edgecolor": "black",
            "linewidth": 0.4,
        }
        ax.bar(x - 0.2, np.nan_to_num(a), 0.4, alpha=0.4, **look)
        ax.bar(x + 0.2, np.nan_to_num(b), 0.4, **look)
        for xi, ai, bi, ch in zip(x, a, b, table[f"{m}_change_pct"], strict=True):
            if not math.isnan(ch):
                ax.text(
                    xi,
                    np.nanmax([ai, bi]) * 1.02,
                    f"{ch:+.1f}%",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        ax.set_xticks(x, labels, rotation=25, ha="right", fontsize=8)
        ax.set_title(name + (" (ms)" if scale != 1 else ""), fontsize=9)
        top = np.nanmax(np.concatenate([a, b])) if len(a) else 1
        ax.set_ylim(0, (top if np.isfinite(top) and top > 0 else 1) * 1.18)
        ax.grid(True, axis="y", alpha=0.3)
    return style.save(fig, out_dir, "compare")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servebench.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_a", type=Path, help="first run directory (the reference)")
    parser.add_argument("run_b", type=Path, help="second run directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=paths.FIGURES,
        help="where to write compare.csv and compare.png (default: figures/)",
    )
    args = parser.parse_args(argv)
    try:
        table = compare_runs(args.run_a, args.run_b)
    except (RunDataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    meta = compare_metadata(args.run_a, args.run_b)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "compare.csv", index=False)
    meta.to_csv(args.out / "compare_metadata.csv", index=False)
    png = fig_compare(table, args.out)
    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format
    ):
        print(f"A = {table.attrs['run_a']}\nB = {table.attrs['run_b']}\n")
        print(table.to_string(index=False))
        print("\nmetadata that differs:" if len(meta) else "\nmetadata: no differences")
        if len(meta):
            print(meta.to_string(index=False))
    print(f"\nwrote {args.out / 'compare.csv'}, {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
