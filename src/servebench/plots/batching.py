"""Dynamic batching's figures: the in-process batch limit, and the services against their twins.

Numbers from :mod:`servebench.analysis.batching`; both figures are absent (None) from a run
without a batched service.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from servebench.analysis import batching, tables
from servebench.plots import style
from servebench.rundir.reader import Run


def draw_batch_ceiling(run: Run) -> Figure | None:
    """Items/s of each batched service's own batch path in process, per batch size and
    variant (lines), with what the service answered over HTTP at the seed point (a thin line
    of the same style, its rate in the legend)."""
    ceiling = batching.batch_ceiling(run)
    if ceiling.empty:
        return None
    fig, axes = style.new_figure(
        run,
        "The batching ceiling: items/s of the batch path in process (no HTTP) per batch size",
        size=(9, 5),
    )
    ax = axes[0, 0]
    summary = tables.build_summary(run, write=False).set_index(["service", "variant"])
    for (service, variant), g in ceiling.groupby(["service", "variant"], sort=False):
        kw = style.line_style(run, service, variant)
        if (service, variant) in summary.index:
            # The HTTP rate in the legend, not beside its line: two services' lines can lie
            # a few items/s apart, and their labels over each other.
            rps = summary.at[(service, variant), "rps"]
            ax.axhline(rps, color=kw["color"], linestyle=kw["linestyle"], alpha=0.5, lw=1)
            kw["label"] += f" (thin line: over HTTP, {rps:.0f}/s)"
        ax.plot(g["batch_size"], g["items_per_s"], marker="o", **kw)
    ax.set_xscale("log", base=2)
    sizes = sorted(ceiling["batch_size"].unique())
    ax.set_xticks(sizes, [str(int(b)) for b in sizes])
    ax.set_xlabel("batch size (the same text in every row)")
    ax.set_ylabel("items/s")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def draw_batching(run: Run) -> Figure | None:
    """Requests/sec over concurrency for each batched service and its twin, on the seed
    payload and on the mixed workload (one panel each), and the batch sizes formed."""
    table = batching.twin_table(run)
    if table.empty:
        return None
    wanted = {run.seed_payload, "mixed"}
    payloads = [p for p in run.payloads_in_order(table["payload"]) if p in wanted]
    sizes = batching.batch_sizes(run)
    panels = len(payloads) + 1 + (run.workload is not None)
    # Two panels a row: four in one row shrank the text to half its size at page width.
    ncols, nrows = style.grid_shape(panels, 2)
    fig, axes = style.new_figure(
        run,
        "Dynamic batching against the same service unbatched (×: the unbatched twin)",
        ncols=ncols,
        nrows=nrows,
        size=(6.0 * ncols, 4.6 * nrows),
    )
    style.hide_unused(axes, panels)
    axes = axes.reshape(1, -1)
    for ax, payload in zip(axes[0], payloads, strict=False):
        mine = table[table["payload"] == payload]
        for (service, variant), g in mine.groupby(["service", "variant"], sort=False):
            g = g.sort_values("concurrency")
            kw = style.line_style(run, service, variant)
            ax.plot(g["concurrency"], g["rps"], marker="o", **kw)
            twin = str(g["twin"].iloc[0])
            if twin in style.colors(run):  # a run may lack the twin
                twin_kw = style.line_style(run, twin, variant)
                twin_kw["label"] = f"{twin_kw['label']} (twin)"
                ax.plot(g["concurrency"], g["twin_rps"], marker="x", alpha=0.6, **twin_kw)
        ax.set_xscale("log")
        ax.set_title(f"payload {payload!r}", fontsize=10)
        ax.set_xlabel("concurrency (closed loop)")
        ax.set_ylabel("requests/sec")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    if run.workload is not None:
        ax = axes[0, panels - 1]
        tokens = run.workload["tokens"].to_numpy(dtype=float)
        bins = np.geomspace(max(1.0, tokens.min()), max(2.0, tokens.max()), 30)
        ax.hist(tokens, bins=bins, color="#888888")
        ax.set_xscale("log")
        ax.set_title(f"the mixed workload: {len(tokens)} requests", fontsize=10)
        ax.set_xlabel("tokens per request (log)")
        ax.set_ylabel("requests")
    ax = axes[0, len(payloads)]
    shown = sizes[sizes["payload"].isin(["mixed", run.seed_payload])]
    groups = list(shown.groupby(["service", "variant", "concurrency"], sort=True))
    if groups:
        data = [g["batch_size"].to_numpy(dtype=float) for _, g in groups]
        ax.boxplot(data, orientation="vertical", showfliers=False)
        labels = [f"{run.label(s)}\n{v} c={c}" for (s, v, c), _ in groups]
        ax.set_xticks(np.arange(1, len(groups) + 1), labels, rotation=60, fontsize=7)
    ax.set_title("batch sizes formed (x-batch-size)", fontsize=10)
    ax.set_ylabel("requests in the batch")
    ax.grid(True, axis="y", alpha=0.3)
    return fig
