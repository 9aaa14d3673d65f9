"""Latency per text length on the mixed workload: does a long text hold up the short ones?

Numbers from :mod:`servebench.analysis.length_classes`; the figure is absent (None) from a
run without the mixed workload.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from servebench.analysis import length_classes
from servebench.plots import style
from servebench.rundir.reader import Run

#: The markers of the two percentiles on each unit's line.
P50, P99 = "o", "D"


def beside_twins(run: Run, services: Sequence[str]) -> list[str]:
    """``services`` in display order, but each batched service right after its twin (when
    the twin is among them), so that the two read as a pair."""
    twin_of = {s: str(run.fact(s, "twin")) for s in services if run.fact(s, "batching")}
    placed = [s for s in services if twin_of.get(s) not in services]
    for batched, twin in twin_of.items():
        if twin in placed:
            placed.insert(placed.index(twin) + 1, batched)
    return placed


def draw_length_classes(run: Run) -> Figure | None:
    """A panel per length class: each unit's p50 (circle) to p99 (diamond) on a log axis
    at the highest concurrency of the mixed workload, the p99 printed and, for a batched
    service, its ratio to its twin's."""
    table = length_classes.length_class_table(run)
    if table.empty:
        return None
    top = int(table["concurrency"].max())
    at = table[table["concurrency"] == top]
    present = set(zip(at["service"], at["variant"], strict=True))
    services = beside_twins(run, run.services_in_order(at["service"]))
    variants = run.variants_in_order(at["variant"])
    units = [(s, v) for s in services for v in variants if (s, v) in present]
    classes = [c for c in length_classes.CLASSES if c in set(at["length_class"])]
    fig, axes = style.new_figure(
        run,
        f"Latency per text length on the mixed workload at c={top} (the rounds' requests pooled)",
        ncols=len(classes),
        size=(12, 1.8 + 0.3 * len(units)),
        sharex=True,
        sharey=True,
    )
    # Room on the right for the printed p99 and ratio (a factor, on the log axis).
    right = float(np.nanmax(at["p99_ms"])) / 1e3 * 2.5
    # A rule between two services: a batched service and its twin read as two blocks.
    rules = [i - 0.5 for i in range(1, len(units)) if units[i][0] != units[i - 1][0]]
    for ax, name in zip(axes[0], classes, strict=True):
        rows = at[at["length_class"] == name].set_index(["service", "variant"]).reindex(units)
        _draw_class(ax, run, rows, units)
        answered = int(rows["requests"].max())
        ax.set_title(f"{length_classes.described(name)}: {answered} requests", fontsize=10)
        ax.set_xscale("log")
        ax.set_xlim(right=right)
        style.log_ms(ax.xaxis)
        ax.set_xlabel("latency (ms, log)")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        for y in rules:
            ax.axhline(y, color="#cccccc", linewidth=0.6)
    style.barh_labelled(axes[0, 0], units, run)
    fig.legend(
        handles=[
            Line2D([], [], marker=P50, color="black", linestyle="", label="p50"),
            Line2D([], [], marker=P99, color="black", linestyle="", label="p99 (printed, ms)"),
        ],
        loc="outside lower center",
        ncols=2,
        fontsize=8,
    )
    return fig


def _draw_class(ax: Axes, run: Run, rows: pd.DataFrame, units: list[tuple[str, str]]) -> None:
    """One class's panel: a line from p50 to p99 per unit, a batched service's p99 ÷ its
    twin's printed beside its own."""
    y = np.arange(len(units))
    p50, p99 = rows["p50_ms"].to_numpy(float) / 1e3, rows["p99_ms"].to_numpy(float) / 1e3
    fills = [style.unit_fill(run, s, v) for s, v in units]
    ax.hlines(y, p50, p99, colors=fills, linewidth=2.5)
    for marker, values in ((P50, p50), (P99, p99)):
        ax.scatter(values, y, c=fills, marker=marker, edgecolors="black", linewidths=0.5, zorder=3)
    for yi, (seconds, ratio) in enumerate(zip(p99, rows["p99_vs_twin"], strict=True)):
        if not np.isfinite(seconds):  # the unit had no answer of this class
            continue
        text = f"{seconds * 1e3:.0f}" + (f" ({ratio:.2f}× twin)" if np.isfinite(ratio) else "")
        ax.annotate(
            text, (seconds, yi), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7
        )
