"""What every figure shares: service colours, the figure frame, millisecond axes, saving.

Figures are :class:`matplotlib.figure.Figure` objects made without pyplot, so drawing
never touches a notebook's backend or global state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rcParams
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
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


def colors(run: Run) -> dict[str, str]:
    return run.cached("colors", lambda: service_colors(run.facts))


def out_dirs(out_dir: OutDirs) -> list[Path]:
    dirs = [Path(out_dir)] if isinstance(out_dir, str | Path) else [Path(d) for d in out_dir]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def save(fig: Figure, out_dir: OutDirs, name: str) -> Path:
    """``<name>.png`` into every directory; returns the first path."""
    paths = [d / f"{name}.png" for d in out_dirs(out_dir)]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    return paths[0]


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


def barh_labelled(ax: Any, services: Sequence[str], run: Run) -> None:
    """Service labels on a horizontal bar chart's y axis, the first service on top."""
    ax.set_yticks(np.arange(len(services)), [run.label(s) for s in services], fontsize=8)
    ax.invert_yaxis()


def bars_with_range(
    ax: Any,
    pos: np.ndarray,
    frame: pd.DataFrame,
    column: str,
    width: float,
    color: str,
    label: str | None = None,
) -> None:
    """Bars at the median with min–max whiskers (columns <c>, <c>_min/<c>_max or <x>_min_s)."""
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
    )
