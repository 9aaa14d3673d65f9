"""Figures: ONE registry of the report's figures, and :func:`make_figures` to draw them all.

:data:`FIGURES` maps a figure's name (its PNG's stem) to the function that draws it from a
loaded run and a one-line caption saying what to read in it; the report notebook and the
README show them in this order. Adding a figure is one function and one entry here.
Colours, labels and the order of services come from the run's services.csv, so a new
service needs no change here. Every figure shows each service with each model variant of the
run (the service's colour; a variant other than fp32 hatched and paler, or dashed, and
labelled "Python · int8"), except hey's histograms, which show the fp32 model only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from servebench.plots import (
    batching,
    cost,
    factors,
    ladder,
    latency,
    length_classes,
    peak_share,
    stability,
    style,
    throughput,
)
from servebench.rundir.reader import Run, load_run


@dataclass(frozen=True)
class FigureSpec:
    draw: Callable[[Run], Figure | None]
    caption: str


# In the order a reader meets them (the README shows them in this order).
FIGURES: dict[str, FigureSpec] = {
    "rps_bars": FigureSpec(
        throughput.draw_rps_bars,
        "Requests/sec at the seed point against each service's in-process ceiling (black "
        "tick): the gap is what serving over HTTP costs. Over each bar: its req/s · its share "
        "of that ceiling (* its rounds spread more than the run's unstable threshold).",
    ),
    "ladder": FigureSpec(
        ladder.draw_ladder,
        "Is it Rust, or is it the Python stack? The seed's Python one change at a time up to "
        "a tuned stack (each step's ratio to the one before printed), the Rust services "
        "beside it, and one request's time at c=1: what the HTTP stack, the tokenizer "
        "wrapper and the thread hop cost, and what is left for the language.",
    ),
    "peak_share": FigureSpec(
        peak_share.draw_peak_share,
        "How close to the hardware: each rate at the seed point as a share of what this "
        "core's matrix kernels do at best (ONNX Runtime, one thread, measured in the run): "
        "one text at a time in process, the best batch in process, and each service over "
        "HTTP, per model variant. What is left below 100 % is the model's non-matrix work, "
        "small matrices and serving.",
    ),
    "variant_rps": FigureSpec(
        factors.draw_variant_rps,
        "What moves throughput: requests/sec per service (group) and model variant (bar; "
        "hatched: not fp32, ×: its factor over fp32) with each variant's in-process ceilings: "
        "within a group the variant, across groups the language.",
    ),
    "paired_ratios": FigureSpec(
        stability.draw_paired_ratios,
        "Every ratio between services at the seed point with its 95 % interval (each round's "
        "ratio of two bursts run seconds apart, t interval on their logarithms), the A/A "
        "control's first: an interval that crosses 1 is no difference; hollow markers did "
        "not reach the run's precision target.",
    ),
    "in_process_ratios": FigureSpec(
        stability.draw_in_process_ratios,
        "The in-process limits, timed in the same rounds: each service ÷ its loop without "
        "HTTP (its efficiency), int8 ÷ fp32 and batch b ÷ batch 1 without HTTP, with 95 % "
        "intervals: what the model and batching allow before any serving cost.",
    ),
    "batching": FigureSpec(
        batching.draw_batching,
        "Dynamic batching: each batched service (o) against its unbatched twin (×) over "
        "concurrency, on the one repeated sentence and on the mixed workload, and the batch "
        "sizes it formed: batching pays under load and must cost nothing at c=1.",
    ),
    "batch_ceiling": FigureSpec(
        batching.draw_batch_ceiling,
        "The batching ceiling: items/s of each batched service's own batch path without "
        "HTTP, per batch size; the thin line is what the service answered over HTTP at the "
        "seed point.",
    ),
    "length_classes": FigureSpec(
        length_classes.draw_length_classes,
        "Latency per text length on the mixed workload, each batched service beside its "
        "twin: whether a long text in the queue holds up the short ones behind it (their "
        "p99), and what batching costs the long texts themselves.",
    ),
    "histograms": FigureSpec(
        latency.draw_histograms,
        "hey's own histogram per service: where the bulk of answers sits, and how long the "
        "tail is, at the seed point (fp32 model only: a panel per variant would be unreadable).",
    ),
    "latency_cdf": FigureSpec(
        latency.draw_latency_cdf,
        "Latency distribution, tail stretched: a service whose line rises at the right has "
        "a heavy p99/p99.9 even if its median is good.",
    ),
    "throughput_latency": FigureSpec(
        latency.draw_throughput_latency,
        "Throughput against latency over concurrency: where a line turns vertical is the "
        "service's capacity; more load only queues.",
    ),
    "decomposition": FigureSpec(
        cost.draw_decomposition,
        "One request at concurrency 1 split into network/HTTP, handler, tokenization and "
        "inference: which part differs between services.",
    ),
    "payloads": FigureSpec(
        throughput.draw_payloads,
        "Requests/sec and p99 per payload: as inputs grow, inference dominates and the "
        "services converge.",
    ),
    "openloop": FigureSpec(
        throughput.draw_openloop,
        "Open loop: p99 against offered rate; the last filled marker under the red bound is "
        "the service's latency-bounded throughput.",
    ),
    "resources": FigureSpec(
        cost.draw_resources,
        "What each service costs: server CPU per request, peak memory, cold start and size "
        "on disk.",
    ),
    "drift": FigureSpec(
        stability.draw_drift,
        "The drift monitor: one fixed in-process probe re-timed after every round; how much "
        "the machine's own speed moved while the points (shaded) were measured.",
    ),
}


def draw(run: Run | str | Path, name: str) -> Figure | None:
    """One figure by name (``None`` when an optional input is missing; see ``run.notes``)."""
    return FIGURES[name].draw(load_run(run))


def make_figures(run: Run | str | Path, out_dirs: style.OutDirs) -> dict[str, Path | None]:
    """Every figure as ``<name>.png`` into every directory of ``out_dirs``; ``None`` for
    skipped ones (the reason is in ``run.notes``)."""
    run = load_run(run)
    made: dict[str, Path | None] = {}
    for name, spec in FIGURES.items():
        fig = spec.draw(run)
        made[name] = None if fig is None else style.save(fig, out_dirs, name)
    return made
