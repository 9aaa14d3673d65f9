"""How close to the hardware: each achieved rate as a share of the core's measured peak.

Numbers from :mod:`servebench.analysis.peak_share`; the figure is absent (None) from a run
without the peak or the FLOP counts (a run made before they were measured).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from servebench.analysis import peak_share, tables
from servebench.plots import style
from servebench.rundir.reader import Run

IN_PROCESS = "#8c8c8c"


def row_label(run: Run, where: str, service: str, batch_size: float) -> str:
    """'python loop, batch 1', 'Rust native batched, batch 16 (in process)', 'Python'."""
    if where == peak_share.IN_PROCESS_B1:
        return f"{service}, batch 1 (in process)"
    shown = peak_share.name(run, service)
    if where == peak_share.IN_PROCESS_BEST:
        return f"{shown}, batch {int(batch_size)} (in process)"
    return shown


def draw_peak_share(run: Run) -> Figure | None:
    """A panel per variant: the in-process loops at batch 1 and the best batch (grey), then
    every service over HTTP at the seed point (its colour), as % of the core's peak."""
    table = peak_share.peak_share(run, tables.build_summary(run))
    if table.empty:
        return None
    table = table.assign(
        label=[
            row_label(run, w, s, b)
            for w, s, b in zip(table["where"], table["service"], table["batch_size"], strict=True)
        ]
    )
    labels = list(dict.fromkeys(table["label"]))  # in_process rows first, as achieved() lists
    variants = run.variants_in_order(table["variant"])
    peak = peak_share.peaks(run)
    fig, axes = style.new_figure(
        run,
        f"Share of the core's peak (fp32 {peak['fp32']:.0f} GFLOP/s, int8 "
        f"{peak.get('int8', np.nan):.0f} GOP/s, one thread), {style.seed_point(run)}",
        ncols=len(variants),
        size=(4.2 * len(variants) + 2.5, 1.5 + 0.28 * len(labels)),
        sharey=True,
    )
    for ax, variant in zip(axes[0], variants, strict=True):
        rows = table[table["variant"] == variant].set_index("label").reindex(labels)
        colors = [
            IN_PROCESS if (w != peak_share.HTTP or pd.isna(w)) else style.colors(run)[s]
            for w, s in zip(rows["where"], rows["service"], strict=True)
        ]
        pct = rows["peak_share"].to_numpy(dtype=float) * 100
        ypos = np.arange(len(labels))
        ax.barh(ypos, np.nan_to_num(pct), color=colors, hatch=style.variant_style(variant).hatch)
        for y, value in zip(ypos, pct, strict=True):
            if np.isfinite(value):
                ax.text(value + 1, y, f"{value:.0f} %", va="center", fontsize=7)
        ax.axvline(100, color="black", linewidth=0.8, linestyle="--")
        ax.set_xlim(0, max(110, float(np.nanmax(pct)) * 1.15))
        ax.set_xlabel("% of the core's peak")
        ax.set_title(variant, fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0, 0].set_yticks(np.arange(len(labels)), labels, fontsize=8)
    axes[0, 0].invert_yaxis()
    return fig
