"""How precise and how steady: the paired ratios with their intervals, and the drift monitor.

:func:`draw_paired_ratios` shows the services' ratios of ratios.csv at the seed point
(:func:`servebench.analysis.tables.ratios`), :func:`draw_in_process_ratios` those against and
among the in-process limits; :func:`draw_drift` the drift probe of an
interleaved run (:mod:`servebench.analysis.stability`), None for a run without drift.csv.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from servebench.analysis import inprocess, paired, ratios, stability, tables
from servebench.plots import style
from servebench.rundir.reader import Run

#: Where a ratio axis puts its ticks (those inside the axis' range).
NICE_RATIOS = (
    0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0,
    15.0, 20.0,
)  # fmt: skip
#: The ticks a wide ratio axis keeps first.
ROUNDEST = (1.0, 0.5, 2.0, 0.25, 5.0, 10.0, 20.0)
#: What each kind of ratio compares, as a panel's title.
KIND_TITLES = {
    "control": "the noise floor: the A/A control, a second instance of its baseline ÷ it",
    "baseline": "the language: each service ÷ its baseline, same variant",
    "variant": "the model: each variant ÷ fp32, same service",
    "batching": "dynamic batching: each batched service ÷ its unbatched twin, same variant",
    "efficiency": "efficiency: each service ÷ its batch-1 limit in process (no HTTP), same variant",
    "in_process_variant": "the model without HTTP: each in-process loop's variant ÷ its fp32",
    "batch_size": "batching without HTTP: each batch path at batch b ÷ at batch 1",
    "queue_efficiency": "each batched service ÷ its own queue replayed in process, same texts",
    "queue_batching": "batching on the mixed workload without HTTP: c clients ÷ one client",
}


def _color(colors: dict[str, str], side: str) -> str:
    """A service's colour; a batch path's or a replay's batched service's; the loops' grey."""
    parsed = inprocess.parse_id(side)
    owner = parsed[1] if parsed and parsed[0] in ("batch", "replay") else side
    return colors.get(owner, style.IN_PROCESS_COLOR)


def draw_paired_ratios(run: Run) -> Figure | None:
    """The services' paired ratios at the seed point (:data:`servebench.analysis.paired.
    KINDS`: the A/A control first) with their 95 % intervals (:func:`_draw_ratios`)."""
    return _draw_ratios(run, paired.KINDS, "Paired ratios of requests/sec")


def draw_in_process_ratios(run: Run) -> Figure | None:
    """The ratios against and among the in-process limits at the seed point
    (:data:`servebench.analysis.inprocess.KINDS`), as :func:`draw_paired_ratios`; None for
    a run that timed its limits apart from the rounds."""
    return _draw_ratios(run, inprocess.KINDS, "The in-process limits, paired")


def _draw_ratios(run: Run, kinds: tuple[str, ...], title: str) -> Figure | None:
    """The seed point's ratios of `kinds`, one panel per kind and one row per ratio: a
    marker in the unit's colour at the estimate, whiskers for the interval, filled when
    the interval is within the run's target, hollow when it is not (or has one round, so
    no interval). None when the seed point has none of them."""
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    seed = seed[seed["kind"].isin(kinds)] if len(seed) else seed
    if seed.empty:
        return None
    kinds = tuple(k for k in kinds if (seed["kind"] == k).any())
    heights = [int((seed["kind"] == k).sum()) + 1 for k in kinds]
    target, rounds = run.rounds.target_ci_pct, int(seed["rounds"].max())
    fig, axes = style.new_figure(
        run,
        f"{title}, {style.seed_point(run)} (95 % t interval over up to "
        f"{rounds} rounds; hollow: wider than ±{target:g} %)",
        nrows=len(kinds),
        size=(10, 1.2 + 0.32 * sum(heights)),
        gridspec_kw={"height_ratios": heights},
    )
    colors = style.colors(run)
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        rows = seed[seed["kind"] == kind].reset_index(drop=True)
        y = np.arange(len(rows))
        for yi, r in rows.iterrows():
            color = _color(colors, str(r["service"]))
            est, low, high = (float(r[c]) for c in ratios.INTERVAL_COLUMNS)
            err = None if np.isnan(low) else [[est - low], [high - est]]
            ax.errorbar(
                est, yi, xerr=err, fmt=style.variant_style(str(r["variant"])).marker,
                color=color, markerfacecolor=color if r["converged"] else "white",
                markersize=7, capsize=3, linewidth=1.2,
            )  # fmt: skip
            ax.annotate(
                ratios.formatted(est, low, high),
                (high if not np.isnan(high) else est, yi),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        ax.axvline(1.0, color="black", linewidth=0.8)
        labels = [ratios.compared(run, r) for r in rows.itertuples(index=False)]
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xscale("log")
        ax.set_title(KIND_TITLES.get(kind, kind), fontsize=9, loc="left")
        ax.grid(True, axis="x", which="both", alpha=0.3)
        _pad(ax, rows)
    axes[-1, 0].set_xlabel("ratio of requests/sec (log scale; 1 = no difference)")
    handles = [
        Line2D([], [], marker="o", color="grey", label=f"interval within ±{target:g} %"),
        Line2D([], [], marker="o", color="grey", markerfacecolor="white", label="not converged"),
    ]
    # Below the panels: inside one, the legend covered the printed value of a wide interval.
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=2)
    return fig


def _pad(ax: object, rows: pd.DataFrame) -> None:
    """Room on the right of the widest interval for its printed value."""
    highs = rows["ratio_ci_high"].fillna(rows["ratio"]).to_numpy(float)
    lows = rows["ratio_ci_low"].fillna(rows["ratio"]).to_numpy(float)
    low, high = min(np.nanmin(lows), 1.0), max(np.nanmax(highs), 1.0)
    left, right = low / 1.08, high * (high / low) ** 0.6 * 1.1
    ax.set_xlim(left, right)  # type: ignore[attr-defined]
    # A log axis labels powers of ten only; ratios read better as 0.8×, 1×, 1.25× ...
    ticks = ratio_ticks(left, right)
    ax.set_xticks(ticks, [f"{t:g}×" for t in ticks])  # type: ignore[attr-defined]
    ax.set_xticks([], minor=True)  # type: ignore[attr-defined]


def ratio_ticks(left: float, right: float, most: int = 9) -> list[float]:
    """The :data:`NICE_RATIOS` inside ``[left, right]``, 1× always among them, the roundest
    first, each kept only at least 1/``most`` of the axis from every other (on a log axis):
    a noisy run's wide intervals must not crowd the labels into each other."""
    gap = math.log(right / left) / most
    inside = [t for t in NICE_RATIOS if left <= t <= right]
    kept: list[float] = []
    for t in sorted(inside, key=lambda t: (t not in ROUNDEST, abs(math.log(t)))):
        if all(abs(math.log(t / k)) >= gap for k in kept):
            kept.append(t)
    return sorted(kept)


def draw_drift(run: Run) -> Figure | None:
    """The drift probe over the interleaved phase (µs per classification; run before the
    first point and after every round), each point's stretch shaded and labelled; the
    title states the probe's range. None without drift.csv."""
    if run.drift is None or run.drift.empty:
        return None
    drift = run.drift.sort_values("seq")
    spread = stability.drift_range_pct(run)
    fig, axes = style.new_figure(
        run,
        f"Drift monitor: the same in-process probe ranged {spread:.1f} % over the interleaved "
        "phase (paired ratios cancel what both sides of a round share)",
        size=(11, 4.8),
    )
    ax = axes[0, 0]
    spans = stability.drift_spans(run)
    for i, span in spans.iterrows():
        if i % 2 == 0:
            ax.axvspan(span["start_s"], span["end_s"], color="#dddddd", alpha=0.6, linewidth=0)
        ax.text(
            (span["start_s"] + span["end_s"]) / 2, 1.0,
            f"{span['payload']} c={span['concurrency']}",
            transform=ax.get_xaxis_transform(), rotation=90, ha="center", va="top", fontsize=6,
        )  # fmt: skip
    ax.plot(drift["elapsed_s"], drift["probe_us"], marker=".", color="#333333", linewidth=1)
    median = float(drift["probe_us"].median())
    ax.axhline(median, color="#1f77b4", linestyle="--", linewidth=0.8, label="median")
    ax.set_xlabel("seconds since the interleaved phase began (shaded: one point's rounds)")
    ax.set_ylabel("µs per classification\n(seed sentence, fp32, Python, in process)")
    top = float(drift["probe_us"].max())
    ax.set_ylim(float(drift["probe_us"].min()) * 0.97, top + (top - median) * 1.2 + 1e-9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return fig
