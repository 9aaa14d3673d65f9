"""Latency figures: hey's histograms, the latency distribution, throughput against latency.

Each ``draw_*`` takes a loaded run and returns one matplotlib figure. The distribution and
the concurrency sweep draw one line per service and model variant (dashed: not fp32); the
histograms show the fp32 model only (a panel per variant would be unreadable).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from servebench.analysis import stats, tables
from servebench.plots import style
from servebench.rundir.reader import BASE_VARIANT, Run


def _seed_requests(run: Run) -> pd.DataFrame:
    r = run.requests
    return r[(r["payload"] == run.seed_payload) & (r["concurrency"] == run.seed_concurrency)]


def _representative_round(run: Run, service: str, variant: str) -> int:
    """The seed table's run (a full hey -n run) whose rps is the median one (lower middle
    for an even count)."""
    pr = tables.seed_runs(run)
    g = pr[(pr["service"] == service) & (pr["variant"] == variant)].sort_values("rps")
    return int(g["round"].iloc[(len(g) - 1) // 2])


def draw_histograms(run: Run) -> Figure:
    """hey's response-time histogram, one panel per service, seed payload and concurrency.

    Each panel is the representative round (median rps) drawn like hey's text: 11 marks
    from fastest to slowest, a bar per mark counting the answers up to that mark. The fp32
    model only (the seed's): one panel per service and variant would be unreadable.
    """
    measured = run.variants_in_order()
    variant = BASE_VARIANT if BASE_VARIANT in measured else measured[0]
    services = [s for s, v in run.units_in_order() if v == variant]
    colors = style.colors(run)
    ncols, nrows = style.grid_shape(len(services), 3)
    which = f", {variant} model" if run.multi_variant else ""
    fig, axes = style.new_figure(
        run,
        f"Response-time histograms, hey style ({style.seed_point(run)}{which}, the seed "
        "table's median-rps run)",
        ncols=ncols,
        nrows=nrows,
        size=(4.2 * ncols, 3.4 * nrows),
    )
    req = _seed_requests(run)
    req = req[req["variant"] == variant]
    for ax, service in zip(axes.flat, services, strict=False):
        number = _representative_round(run, service, variant)
        lat = req.loc[(req["service"] == service) & (req["round"] == number), "response_time_s"]
        hist = stats.hey_histogram(lat)
        y = np.arange(len(hist))
        ax.barh(y, hist["count"], color=colors[service], edgecolor="black", linewidth=0.4)
        ax.set_yticks(y, [f"{m * 1e3:.1f}" for m in hist["mark_s"]], fontsize=8)
        ax.invert_yaxis()
        top = max(int(hist["count"].max()), 1) if len(hist) else 1
        for yi, c in zip(y, hist["count"], strict=True):
            ax.text(c + top * 0.02, yi, f"[{c}]", va="center", fontsize=7)
        ax.set_xlim(0, top * 1.2)
        ax.set_title(f"{run.label(service)} (round {number}, n={len(lat)})", fontsize=9)
        ax.set_xlabel("answers", fontsize=8)
        ax.set_ylabel("bucket upper mark (ms)", fontsize=8)
    style.hide_unused(axes, len(services))
    return fig


def draw_latency_cdf(run: Run) -> Figure:
    """Latency distribution at the seed configuration, all rounds pooled, one line per
    service and variant.

    Left: CDF on a log latency axis. Right: latency by percentile on a tail-stretching axis
    (0, 90, 99, 99.9 % equally spaced), so p99/p99.9 are readable.
    """
    title = f"Latency distribution ({style.seed_point(run)}, rounds pooled)"
    fig, axes = style.new_figure(run, title, ncols=2, size=(12, 5))
    ax_cdf, ax_pct = axes[0]
    req = _seed_requests(run)
    for service, variant in run.units_in_order():
        mine = (req["service"] == service) & (req["variant"] == variant)
        lat = np.sort(req.loc[mine, "response_time_s"].to_numpy(float))
        if lat.size == 0:
            continue
        line = style.line_style(run, service, variant)
        frac = np.arange(1, lat.size + 1) / lat.size
        ax_cdf.step(lat, frac, where="post", **line)
        tail = -np.log10(np.clip(1 - (np.arange(lat.size) + 0.5) / lat.size, 1e-6, 1))
        ax_pct.plot(tail, lat, **line)
        for q in stats.PERCENTILES.values():
            ax_pct.plot(
                -math.log10(1 - q / 100), stats.percentile(lat, q), "o", ms=3, color=line["color"]
            )
    ax_cdf.set_xscale("log")
    style.log_ms(ax_cdf.xaxis)
    ax_cdf.set_xlabel("latency (ms, log scale)")
    ax_cdf.set_ylabel("fraction of requests ≤ latency")
    ax_cdf.grid(True, which="both", alpha=0.3)
    ax_cdf.legend(fontsize=8)
    ax_pct.set_yscale("log")
    style.log_ms(ax_pct.yaxis)
    ax_pct.set_xticks([0, math.log10(2), 1, 2, 3], ["p0", "p50", "p90", "p99", "p99.9"])
    ax_pct.set_xlim(0, 3.3)
    ax_pct.set_xlabel("percentile (tail stretched; dots = p50, p90, p99, p99.9)")
    ax_pct.set_ylabel("latency (ms, log scale)")
    ax_pct.grid(True, which="both", alpha=0.3)
    return fig


def draw_throughput_latency(run: Run) -> Figure:
    """Throughput against latency over the concurrency sweep (seed payload), p50 and p99.

    One line per service and variant (dashed: not fp32); each point a concurrency level
    (median of rounds), labelled c= on the first line only, the legend below the panels.
    """
    pc = tables.per_config(run)
    pc = pc[pc["payload"] == run.seed_payload]
    title = (
        f"Throughput vs latency over concurrency (payload {run.seed_payload!r}, medians of rounds)"
    )
    fig, axes = style.new_figure(run, title, ncols=2, size=(12, 5), sharey=True)
    for ax, col, name in ((axes[0, 0], "p50_s", "p50"), (axes[0, 1], "p99_s", "p99")):
        for i, (service, variant) in enumerate(run.units_in_order(pc)):
            g = pc[(pc["service"] == service) & (pc["variant"] == variant)]
            g = g.sort_values("concurrency")
            ax.plot(g["rps"], g[col], marker="o", **style.line_style(run, service, variant))
            # Every line climbs the same levels: labelling each line's points piles the
            # labels on each other where the lines meet, so only the first says which is which.
            for r in g.itertuples(index=False) if i == 0 else ():
                ax.annotate(
                    f"c={r.concurrency}",
                    (r.rps, getattr(r, col)),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_yscale("log")
        style.log_ms(ax.yaxis)
        ax.set_xlabel("requests/sec")
        ax.set_ylabel(f"{name} latency (ms, log scale)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # Beside the data a legend of every unit hides lines and points; below, it hides nothing.
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    return fig
