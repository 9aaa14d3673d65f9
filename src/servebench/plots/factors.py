"""What moves throughput: the language of the service against the model variant it serves.

:func:`draw_variant_rps` sets both factors side by side at the seed point; the numbers are
:func:`servebench.analysis.factors.factor_table`'s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from servebench.analysis import tables
from servebench.plots import style
from servebench.plots.throughput import draw_ceilings
from servebench.rundir.reader import BASE_VARIANT, Run


def draw_variant_rps(run: Run) -> Figure:
    """Requests/sec at the seed point, one group of bars per service and one bar per model
    variant (median, min–max whiskers of the rounds; ×factor: the service's variant ÷ its
    fp32, the paired estimate with its 95 % interval in brackets when the run has one), with
    every variant's in-process ceilings as horizontal lines.

    Read across groups for the language (service ÷ baseline), within a group for the
    variant, and the ceiling lines for how much of the variant's speed-up the model itself
    gives without HTTP.
    """
    summary = tables.build_summary(run, write=False)
    services = run.services_in_order(summary["service"])
    variants = run.variants_in_order(summary["variant"])
    has_ci = summary["variant_factor_ci_low"].notna().any()
    brackets = "; [ ]: 95 % interval of the paired factor" if has_ci else ""
    fig, axes = style.new_figure(
        run,
        f"What moves throughput: requests/sec per service and model variant "
        f"({style.seed_point(run)}; whiskers: min–max of {int(summary['rounds'].max())} "
        f"rounds{brackets})",
        size=(max(10.0, 0.9 * len(services) * len(variants) + 2), 5.5),
    )
    ax = axes[0, 0]
    rows = summary.set_index(["service", "variant"])
    width = 0.8 / len(variants)
    x = np.arange(len(services))
    for i, variant in enumerate(variants):
        g = rows.xs(variant, level="variant").reindex(services)
        pos = x - 0.4 + width * (i + 0.5)
        fills = [style.unit_fill(run, s, variant) for s in services]
        hatch = style.variant_style(variant).hatch
        style.bars_with_range(ax, pos, g, "rps", width, fills, hatch=hatch)
        for p, r in zip(pos, g.itertuples(), strict=True):
            if pd.isna(r.rps):
                continue
            text = f"{r.rps:.0f}"
            if variant != BASE_VARIANT and not pd.isna(r.variant_factor):
                text += f"\n×{r.variant_factor:.2f}"
                if not pd.isna(r.variant_factor_ci_low):
                    text += f"\n[{r.variant_factor_ci_low:.2f}–{r.variant_factor_ci_high:.2f}]"
            ax.text(p, r.rps_max * 1.01, text, ha="center", va="bottom", fontsize=7)
    ce = draw_ceilings(ax, run)
    ax.set_xticks(x, [run.label(s) for s in services], rotation=15)
    ax.set_ylabel("requests/sec (hey, closed loop)")
    top = np.nanmax([np.nanmax(summary["rps_max"]), *(ce["ceiling_rps"].tolist() or [0])])
    ax.set_ylim(0, top * 1.25)
    ax.grid(True, axis="y", alpha=0.3)
    lines, _ = ax.get_legend_handles_labels()
    handles = [*style.variant_handles(variants), *lines]
    ax.legend(handles=handles, fontsize=8, loc="upper left", ncols=2 if len(lines) > 2 else 1)
    return fig
