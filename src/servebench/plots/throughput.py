"""Throughput figures: requests/sec against the ceiling, per payload, and the open loop,
one bar or line per service and model variant.

Each ``draw_*`` takes a loaded run and returns one matplotlib figure (``None`` when the
optional file it needs is missing; a note in ``run.notes`` says so).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from servebench.analysis import stats, tables
from servebench.plots import style
from servebench.rundir.reader import Run

#: How each in-process ceiling's line is dashed (ceiling.csv ``impl``).
CEILING_LINES = {"python": "--", "rust": ":"}


def draw_ceilings(ax: Any, run: Run) -> pd.DataFrame:
    """The in-process ceilings at the seed payload as horizontal lines (dashes: the impl,
    colour: the variant); returns the rows drawn (empty, with a note, without ceiling.csv)."""
    ce = tables.ceilings(run)
    ce = ce[ce["payload"] == run.seed_payload]
    for c in ce.itertuples(index=False):
        which = f" · {c.variant}" if run.multi_variant else ""
        ax.axhline(
            c.ceiling_rps,
            linestyle=CEILING_LINES.get(c.impl, "-."),
            color=style.variant_style(c.variant).ceiling,
            label=f"{c.impl}{which} in-process ceiling: {c.ceiling_rps:.0f} rps "
            f"({c.total_us / 1e3:.1f} ms × {c.server_cores} CPU)",
        )
    if ce.empty:
        run.note("ceiling.csv missing: requests/sec bars drawn without the ceiling")
    return ce


def draw_rps_bars(run: Run) -> Figure:
    """Requests/sec per service and variant (median of rounds, min-max whiskers) with the
    ceilings.

    Black ticks over each bar: that unit's ceiling; dashed lines: the python and rust
    in-process ceilings of each variant (1e6 / median total_us x server CPUs). Over each
    bar its req/s, its share of that ceiling, and * when its rounds spread past
    ``unstable_pct``.
    """
    summary = tables.build_summary(run, write=False)
    units = list(zip(summary["service"], summary["variant"], strict=True))
    fig, axes = style.new_figure(
        run,
        f"Requests/sec, {style.seed_point(run)} (bar: median; whiskers: min–max of "
        f"{int(summary['rounds'].max())} rounds)",
        # Narrow bars keep the figure near the page's width, where its text stays legible.
        size=(max(10.0, 0.75 * len(units)), 5.5),
    )
    ax = axes[0, 0]
    x = np.arange(len(summary))
    rps = summary["rps"].to_numpy(float)
    err = np.vstack([rps - summary["rps_min"], summary["rps_max"] - rps])
    ax.bar(
        x, rps, yerr=err, capsize=5, edgecolor="black", linewidth=0.5,
        **style.bar_style(run, units),
    )  # fmt: skip
    for xi, r in zip(x, summary.itertuples(index=False), strict=True):
        # One upright line a bar, on white: with 20 bars, stacked lines ran into their
        # neighbours and the ceilings' lines ran through them.
        text = f"{r.rps:.0f}"
        if not pd.isna(r.efficiency):
            text += f" · {r.efficiency:.0%}"
        if r.unstable:
            text += " *"
        ax.text(
            xi, r.rps_max * 1.02, text, ha="center", va="bottom", fontsize=7, rotation=90,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1},
        )  # fmt: skip
        if not pd.isna(r.ceiling_rps):
            ax.hlines(r.ceiling_rps, xi - 0.4, xi + 0.4, colors="black", linewidth=2)
    ce = draw_ceilings(ax, run)
    ax.set_xticks(x, [run.unit_label(s, v) for s, v in units], rotation=35, ha="right")
    ax.set_ylabel("requests/sec (hey, closed loop)")
    top = np.nanmax([np.nanmax(summary["rps_max"]), *(ce["ceiling_rps"].tolist() or [0])])
    ax.set_ylim(0, top * 1.4)  # room for the upright values
    if not ce.empty:
        # Below the bars: in the corner, the ceilings' legend covered the first bars' values.
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
    return fig


def draw_payloads(run: Run) -> Figure:
    """Requests/sec and p99 per payload at the concurrency where every payload was measured
    (:func:`servebench.analysis.tables.payload_concurrency`), one bar per service and variant
    (medians, min–max whiskers)."""
    pc = tables.per_config(run)
    level = tables.payload_concurrency(run)
    pc = pc[(pc["concurrency"] == level) & (pc["payload"] != "mixed")]
    payloads = run.payloads_in_order(pc["payload"])
    units = run.units_in_order(pc)
    fig, axes = style.new_figure(run, f"Per payload at c={level}", ncols=2, size=(13, 5))
    width = 0.8 / max(1, len(units))
    x = np.arange(len(payloads))
    for i, (s, v) in enumerate(units):
        g = pc[(pc["service"] == s) & (pc["variant"] == v)].set_index("payload").reindex(payloads)
        pos = x - 0.4 + width * (i + 0.5)
        look = {"color": style.unit_fill(run, s, v), "hatch": style.variant_style(v).hatch}
        style.bars_with_range(axes[0, 0], pos, g, "rps", width, label=run.unit_label(s, v), **look)
        style.bars_with_range(axes[0, 1], pos, g, "p99_s", width, **look)
    for ax, name in ((axes[0, 0], "requests/sec"), (axes[0, 1], "p99 latency (ms)")):
        ax.set_xticks(x, payloads)
        ax.set_xlabel("payload")
        ax.set_ylabel(name)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 1].yaxis.set_major_formatter(FuncFormatter(style.ms))
    # Below the panels: one bar per unit leaves no free corner for the legend inside.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(5, len(units)), fontsize=8)
    return fig


def draw_openloop(run: Run) -> Figure | None:
    """Open-loop (vegeta) p99 against offered rate, with the latency bounds; one line per
    service and variant (dashed: not fp32).

    Filled markers: a clean attack (every answer 2xx, the rate sent), which meets every bound
    above its p99; hollow: not clean, it meets none. Right panel: achieved throughput against
    offered rate (the diagonal is 'keeps up').
    """
    payload = tables.openloop_payload(run)
    if payload is None or run.openloop is None:
        run.note("openloop.csv missing: open-loop figure skipped")
        return None
    ol = run.openloop[run.openloop["payload"] == payload]
    fig, axes = style.new_figure(
        run, f"Open-loop (fixed arrival rate) latency, payload {payload!r}", ncols=2, size=(12, 5)
    )
    ax, ax_t = axes[0]
    for s, v in run.units_in_order(ol):
        g = ol[(ol["service"] == s) & (ol["variant"] == v)].sort_values("rate")
        ok = stats.as_bool(g["clean"]).to_numpy()
        line = style.line_style(run, s, v)
        ax.plot(g["rate"], g["p99_s"], **line)
        ax.plot(g["rate"][ok], g["p99_s"][ok], "o", color=line["color"])
        ax.plot(g["rate"][~ok], g["p99_s"][~ok], "o", mfc="none", color=line["color"])
        ax_t.plot(g["rate"], g["throughput"], marker="o", **line)
    bounds = run.latency_bounds_s
    for bound, dashes in zip(bounds, ["--", "-.", ":", (0, (5, 1))] * len(bounds), strict=False):
        ax.axhline(bound, color="red", linestyle=dashes, label=f"p99 bound {bound * 1e3:g} ms")
    if not bounds:
        run.note("no latency bound in metadata parameters: open-loop bound lines not drawn")
    ax.set_yscale("log")
    style.log_ms(ax.yaxis)
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title("p99 vs offered rate (hollow: errors or the rate not sent)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    lim = float(ol["rate"].max()) * 1.05
    ax_t.plot([0, lim], [0, lim], color="grey", linestyle=":", label="offered = achieved")
    ax_t.set_xlabel("offered rate (requests/s)")
    ax_t.set_ylabel("achieved throughput (answers/s)")
    ax_t.set_title("throughput vs offered rate", fontsize=9)
    ax_t.grid(True, alpha=0.3)
    return fig
