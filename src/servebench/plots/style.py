"""What every figure shares: service colours, variant styles, the figure frame,
millisecond axes, saving.

A service keeps its colour in every figure; the model variant it serves changes the style
(:data:`VARIANT_STYLES`): fp32 plain, others hatched and paler as bars, dashed as lines.
Figures are :class:`matplotlib.figure.Figure` objects made without pyplot, so drawing
never touches a notebook's backend or global state.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from servebench.rundir.reader import Run

OutDirs = str | Path | Sequence[str | Path]


def service_colors(facts: pd.DataFrame) -> dict[str, str]:
    """Each service's ``color`` fact; one without a colour takes the next unused colour of
    matplotlib's default cycle, so every service still gets its own."""
    taken = {to_hex(c) for c in facts["color"] if c}
    cycle = [to_hex(c) for c in rcParams["axes.prop_cycle"].by_key()["color"]]
    spare = [c for c in cycle if c not in taken]
    out: dict[str, str] = {}
    for service, color in zip(facts.index, facts["color"], strict=True):
        if not color:
            color = spare.pop(0) if spare else "grey"
        out[str(service)] = str(color)
    return out


#: The in-process loops' colour (a batch path takes its batched service's).
IN_PROCESS_COLOR = "#555555"


def colors(run: Run) -> dict[str, str]:
    return run.cached("colors", lambda: service_colors(run.facts))


@dataclass(frozen=True)
class VariantStyle:
    """How a model variant is told apart from fp32 in a service's colour."""

    hatch: str  # bars
    paler: float  # bars: 0 = the service's colour, 1 = white
    linestyle: str  # lines
    marker: str  # points
    ceiling: str  # colour of its in-process ceiling lines (their dashes name the impl)


#: fp32 is drawn as the study always drew it; the others hatched and paler, or dashed.
VARIANT_STYLES: dict[str, VariantStyle] = {
    "fp32": VariantStyle("", 0.0, "-", "o", "#555555"),
    "optimized": VariantStyle("..", 0.25, "-.", "s", "#7b3294"),
    "int8": VariantStyle("///", 0.45, "--", "^", "#1b7837"),
    "int8-static": VariantStyle("\\\\\\", 0.6, ":", "v", "#2166ac"),
}
OTHER_VARIANT = VariantStyle("xx", 0.3, ":", "D", "#b35806")


def variant_style(variant: str) -> VariantStyle:
    return VARIANT_STYLES.get(variant, OTHER_VARIANT)


def paler(color: str, amount: float) -> str:
    """``color`` mixed with white (``amount`` 0..1)."""
    rgb = np.asarray(to_rgb(color))
    return to_hex(rgb + (1.0 - rgb) * amount)


def unit_fill(run: Run, service: str, variant: str) -> str:
    """A bar's fill for a service serving a variant: the service's colour, paler if not fp32."""
    return paler(colors(run)[service], variant_style(variant).paler)


def bar_style(run: Run, units: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``color``/``hatch`` keywords of ``ax.bar``/``ax.barh`` for one bar per unit."""
    return {
        "color": [unit_fill(run, s, v) for s, v in units],
        "hatch": [variant_style(v).hatch for _, v in units],
    }


def line_style(run: Run, service: str, variant: str) -> dict[str, Any]:
    """``color``/``linestyle``/``label`` keywords of ``ax.plot`` for one unit's line."""
    return {
        "color": colors(run)[service],
        "linestyle": variant_style(variant).linestyle,
        "label": run.unit_label(service, variant),
    }


def variant_handles(variants: Sequence[str]) -> list[Patch]:
    """Legend entries saying how each variant is drawn (grey, in its hatch)."""
    return [
        Patch(
            facecolor=paler("#7f7f7f", variant_style(v).paler),
            hatch=variant_style(v).hatch,
            edgecolor="black",
            linewidth=0.4,
            label=f"model {v}",
        )
        for v in variants
    ]


def out_dirs(out_dir: OutDirs) -> list[Path]:
    dirs = [Path(out_dir)] if isinstance(out_dir, str | Path) else [Path(d) for d in out_dir]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def save(fig: Figure, out_dir: OutDirs, name: str) -> Path:
    """``<name>.png`` into every directory; returns the first path.

    Drawn once and copied: a draw is most of a figure's cost, and the copies are then the
    same bytes by construction."""
    first, *others = [d / f"{name}.png" for d in out_dirs(out_dir)]
    fig.savefig(first, dpi=120, bbox_inches="tight")
    for other in others:
        shutil.copyfile(first, other)
    return first


def new_figure(
    run: Run,
    title: str,
    ncols: int = 1,
    nrows: int = 1,
    size: tuple[float, float] = (9, 5),
    **kw: Any,
) -> tuple[Figure, np.ndarray]:
    """A figure with a 2-D array of axes and a title that names the run's model and CPU."""
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    fig.suptitle(f"{title}\n{run.context}", fontsize=11)
    return fig, axes


def seed_point(run: Run) -> str:
    """The seed configuration as figure titles name it: "payload 'seed', c=50"."""
    return f"payload {run.seed_payload!r}, c={run.seed_concurrency}"


def grid_shape(panels: int, max_cols: int) -> tuple[int, int]:
    """(ncols, nrows) for ``panels`` small multiples at most ``max_cols`` wide."""
    ncols = max(1, min(max_cols, panels))
    return ncols, max(1, math.ceil(panels / ncols))


def hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)


def ms(x: float, _pos: Any = None) -> str:
    """Seconds as milliseconds with about three significant digits."""
    value = x * 1e3
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.2g}"


def _minor_ms(x: float, _pos: Any = None) -> str:
    """Label only the 2x and 5x minor ticks of a log axis (the others stay blank)."""
    if x <= 0:
        return ""
    mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
    return ms(x) if round(mantissa) in (2, 5) and abs(mantissa - round(mantissa)) < 1e-6 else ""


def log_ms(axis: Any) -> None:
    """A log-scaled latency axis labelled in milliseconds."""
    axis.set_major_formatter(FuncFormatter(ms))
    axis.set_minor_formatter(FuncFormatter(_minor_ms))
    axis.set_tick_params(which="minor", labelsize=7)


def barh_labelled(ax: Any, units: Sequence[tuple[str, str]], run: Run) -> None:
    """Unit labels ("Python · int8") on a horizontal bar chart's y axis, the first on top."""
    ax.set_yticks(np.arange(len(units)), [run.unit_label(s, v) for s, v in units], fontsize=8)
    ax.invert_yaxis()


def bars_with_range(
    ax: Any,
    pos: np.ndarray,
    frame: pd.DataFrame,
    column: str,
    width: float,
    color: str | Sequence[str],
    label: str | None = None,
    hatch: str = "",
) -> None:
    """Bars at the median with min–max whiskers (columns <c>, <c>_min/<c>_max or <x>_min_s);
    ``color`` one for all bars or one per bar."""
    stem = column.removesuffix("_s")
    suffix = "_s" if column.endswith("_s") else ""
    low, high = frame[f"{stem}_min{suffix}"], frame[f"{stem}_max{suffix}"]
    err = np.vstack([frame[column] - low, high - frame[column]])
    ax.bar(
        pos,
        frame[column],
        width,
        yerr=np.nan_to_num(err),
        capsize=2,
        color=color,
        edgecolor="black",
        linewidth=0.4,
        label=label,
        hatch=hatch,
    )
