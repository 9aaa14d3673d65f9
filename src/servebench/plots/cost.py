"""Cost figures: where one request's time goes, and what each service costs in resources.

Each ``draw_*`` takes a loaded run and returns one matplotlib figure (``None`` when the
optional file it needs is missing; a note in ``run.notes`` says so). Both show one bar per
service and model variant ("Python · int8"; hatched and paler in the resource panels).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from servebench.analysis import measures, tables
from servebench.plots import style
from servebench.rundir.reader import Run

#: Legend text and fill of each part of the round trip (stats.STAGE_COMPONENTS).
STAGE_STYLE = {
    "network_http_us": ("network/HTTP (client − handler)", "#d9d9d9"),
    "handler_overhead_us": ("handler overhead (handler − tok − inf)", "#fdd49e"),
    "tokenization_us": ("tokenization", "#74c476"),
    "inference_us": ("inference (ORT run)", "#3182bd"),
}


def draw_decomposition(run: Run) -> Figure | None:
    """Where one request's time goes at concurrency 1: stacked medians from stages.csv.

    One panel per payload; bars per service and variant split into network/HTTP, handler
    overhead, tokenization and inference (see
    :func:`servebench.analysis.stats.decompose_stages`).
    """
    if run.stages is None or run.stages.empty:
        run.note("stages.csv missing: latency decomposition figure skipped")
        return None
    dec = measures.stage_decomposition(run)
    payloads = run.payloads_in_order(dec["payload"])
    units = run.units_in_order(dec)
    ncols, nrows = style.grid_shape(len(payloads), 2)
    fig, axes = style.new_figure(
        run,
        "Latency decomposition at concurrency 1 (medians of stages.csv)",
        ncols=ncols,
        nrows=nrows,
        size=(6.5 * ncols, 0.6 * len(units) * nrows + 1.8 * nrows),
    )
    for ax, payload in zip(axes.flat, payloads, strict=False):
        d = dec[dec["payload"] == payload].set_index(["service", "variant"]).reindex(units)
        y = np.arange(len(units))
        left = np.zeros(len(units))
        for comp, (name, color) in STAGE_STYLE.items():
            v = np.nan_to_num(np.clip(d[comp].to_numpy(float), 0, None) / 1e3)
            ax.barh(y, v, left=left, color=color, edgecolor="black", linewidth=0.4, label=name)
            left += v
        for yi, tot in zip(y, d["client_us"].to_numpy(float) / 1e3, strict=True):
            if not np.isnan(tot):
                ax.text(left[yi] * 1.01, yi, f"{tot:.1f} ms", va="center", fontsize=7)
        style.barh_labelled(ax, units, run)
        ax.set_xlim(0, np.nanmax(left) * 1.18 if np.nanmax(left) > 0 else 1)
        ax.set_xlabel("ms (median)")
        ax.set_title(f"payload {payload!r}", fontsize=9)
    style.hide_unused(axes, len(payloads))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    return fig


#: Resource panels: summary.csv column, scale to the shown unit, panel title.
RESOURCE_PANELS = (
    ("cpu_s_per_req", 1e3, "server CPU per request (ms)"),
    ("peak_rss_mb", 1, "peak RSS (MB)"),
    ("cold_start_s", 1, "cold start: spawn → first answer (s)"),
    ("size_mb", 1, "size on disk (MB)"),
)


def draw_resources(run: Run) -> Figure:
    """Resource cost per service and variant: CPU ms per request, peak RSS, cold start,
    size on disk (the service's, the same for each of its variants; the model is apart)."""
    summary = tables.build_summary(run, write=False)
    units = list(zip(summary["service"], summary["variant"], strict=True))
    fig, axes = style.new_figure(
        run,
        f"Resources ({style.seed_point(run)})",
        ncols=2,
        nrows=2,
        size=(11, 4 + 0.3 * len(units)),
    )
    y = np.arange(len(summary))
    for ax, (col, scale, name) in zip(axes.flat, RESOURCE_PANELS, strict=True):
        v = summary[col].to_numpy(float) * scale
        if np.all(np.isnan(v)):
            ax.text(
                0.5,
                0.5,
                "not measured (services.csv missing)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        look = style.bar_style(run, units)
        ax.barh(y, np.nan_to_num(v), edgecolor="black", linewidth=0.4, **look)
        for yi, vi in zip(y, v, strict=True):
            if not np.isnan(vi):
                ax.text(vi, yi, f" {vi:.3g}", va="center", fontsize=8)
        style.barh_labelled(ax, units, run)
        ax.set_title(name, fontsize=9)
        finite = v[~np.isnan(v)]
        ax.set_xlim(0, finite.max() * 1.2 if finite.size and finite.max() > 0 else 1)
    return fig
