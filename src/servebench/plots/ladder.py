"""The ladder's figure: where Rust's lead comes from (:mod:`servebench.analysis.ladder`).

:func:`draw_ladder` puts each step of the ladder (foot first) and each service beside it on
one row of two panels: its requests/sec over the foot's with the 95 % interval (the printed
figure is its ratio to the step before it), and its concurrency-1 round trip stacked into
serving (HTTP, routing, JSON, hops), tokenization and inference. None for a run without a ladder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from servebench.analysis import ladder, ratios
from servebench.plots import cost, style
from servebench.plots.stability import ratio_ticks
from servebench.rundir.reader import Run

#: The stacked parts of the round trip (ladder.csv's columns) and their legend and fill.
PARTS = {
    "serving_ms": ("serving (HTTP, routing, JSON, hops)", "#fdd49e"),
    "tokenization_ms": cost.STAGE_STYLE["tokenization_us"],
    "inference_ms": cost.STAGE_STYLE["inference_us"],
}


def draw_ladder(run: Run) -> Figure | None:
    """The ladder beside the services of another language (module docstring)."""
    table = ladder.ladder_table(run)
    if table.empty:
        return None
    foot = str(table["service"].iloc[0])
    n = len(table)
    fig, axes = style.new_figure(
        run,
        f"Where the lead comes from: {run.label(foot)} one change at a time, and Rust beside "
        f"it ({style.seed_point(run)}, fp32)",
        ncols=2,
        size=(13, 1.6 + 0.42 * n),
        sharey=True,
    )
    colors = style.colors(run)
    y = np.arange(n)
    ax = axes[0, 0]
    for yi, r in table.iterrows():
        color = colors.get(str(r["service"]), "grey")
        est, low, high = (float(r[c]) for c in ("foot_ratio", "foot_ci_low", "foot_ci_high"))
        if r["service"] == foot:
            est = low = high = 1.0
        err = None if np.isnan(low) else [[est - low], [high - est]]
        ax.errorbar(est, yi, xerr=err, fmt="o", color=color, capsize=3, markersize=7)
        step, tuned = (
            ratios.formatted(*(float(r[f"{side}_{c}"]) for c in ("ratio", "ci_low", "ci_high")))
            for side in ("step", "tuned")
        )
        note = f"step {step}" if r["step_from"] else (f"÷ tuned {tuned}" if tuned != "–" else "")
        ax.annotate(
            note,
            (high if np.isfinite(high) else est, yi),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.axvline(1.0, color="black", linewidth=0.8)
    highs = table["foot_ci_high"].fillna(table["foot_ratio"]).fillna(1.0).to_numpy(float)
    lows = table["foot_ci_low"].fillna(table["foot_ratio"]).fillna(1.0).to_numpy(float)
    left, right = min(lows.min(), 1.0) / 1.08, max(highs.max(), 1.0) * 1.45
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ticks = ratio_ticks(left, right, most=6)
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])
    ax.set_xticks([], minor=True)
    ax.set_xlabel(f"requests/sec ÷ {run.label(foot)}'s (log; 95 % interval)")
    ax.set_yticks(y, list(table["label"]), fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)
    ax.grid(True, axis="x", alpha=0.3)
    _separate(ax, table)

    ax = axes[0, 1]
    left_edge = np.zeros(n)
    for column, (name, color) in PARTS.items():
        values = np.nan_to_num(np.clip(table[column].to_numpy(float), 0, None))
        ax.barh(y, values, left=left_edge, color=color, edgecolor="k", linewidth=0.4, label=name)
        left_edge += values
    for yi, total in enumerate(table["client_ms"].to_numpy(float)):
        if np.isfinite(total):
            ax.text(left_edge[yi] * 1.01, yi, f"{total:.2f} ms", va="center", fontsize=7)
    ax.set_xlim(0, max(float(np.nanmax(left_edge)), 1e-3) * 1.2)
    ax.set_xlabel("one request at concurrency 1, ms (medians of stages.csv)")
    ax.grid(True, axis="x", alpha=0.3)
    _separate(ax, table)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
    return fig


def _separate(ax: Any, table: pd.DataFrame) -> None:
    """A line between the ladder's steps and the services beside it."""
    steps = int((table["step_from"].astype(str) != "").sum()) + 1
    if steps < len(table):
        ax.axhline(steps - 0.5, color="grey", linewidth=0.8, linestyle="--")
