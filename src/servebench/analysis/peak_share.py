"""How close to the hardware: every achieved rate as a share of the core's measured peak.

Three inputs, all of the same run (docs/DATA.md):

* ``core_peak.csv`` - the core's MatMul peak through ONNX Runtime, one thread
  (measure/peak.py): fp32 GFLOP/s and int8 GOP/s, the best shape of either timing;
* ``flops.csv`` - the model's arithmetic per request for each payload and variant, counted
  from its ONNX graph (models/flops.py): floating-point FLOPs and integer ops;
* the achieved items/s - the in-process loop at batch 1 and the batch path's best batch
  (timed in the seed point's rounds), and each service over HTTP at the seed point
  (``summary.csv``'s medians), per core of the server.

**The share of peak** is the time the peak would need for a request's arithmetic (its float
FLOPs at the fp32 peak plus its integer ops at the int8 peak) ÷ the time the request took
per core. For an fp32 model it is achieved GFLOP/s ÷ the fp32 peak; for an int8 model,
whose attention products stay in floating point, it weighs each part by its own peak, so a
model cannot pass 100 % by moving work to the faster kernel. Elementwise work (softmax,
normalisation, activations) is not counted (flops.py): it is time the core spends below
its MatMul peak, which is what the share shows.
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis.batching import batch_ceiling
from servebench.rundir.reader import Run

#: What the columns of peak_share.csv mean: docs/DATA.md.
COLUMNS = [
    "where", "service", "variant", "batch_size", "items_per_s_per_core", "gflop_per_item",
    "achieved_gops", "peak_share",
]  # fmt: skip
IN_PROCESS_B1 = "in process, batch 1"
IN_PROCESS_BEST = "in process, best batch"
HTTP = "over HTTP, seed point"
WHERE = (IN_PROCESS_B1, IN_PROCESS_BEST, HTTP)


def peaks(run: Run) -> dict[str, float]:
    """GOP/s per precision (``fp32``, ``int8``): the best shape over both timings."""
    frame = run.core_peak
    if frame is None or frame.empty:
        return {}
    return {str(p): float(v) for p, v in frame.groupby("precision")["gop_per_s"].max().items()}


def per_item(run: Run, payload: str) -> pd.DataFrame:
    """flops.csv's rows of one payload, indexed by variant."""
    if run.flops is None or run.flops.empty:
        return pd.DataFrame(columns=["float_flop", "integer_op"])
    return run.flops[run.flops["payload"] == payload].set_index("variant")


def ideal_seconds(float_flop: float, integer_op: float, peak: dict[str, float]) -> float:
    """The time one item's arithmetic takes at the peak: each part at its own kernel's."""
    seconds = float_flop / (peak["fp32"] * 1e9)
    if integer_op:
        seconds += integer_op / (peak["int8"] * 1e9)
    return seconds


def share(
    items_per_s_per_core: float, float_flop: float, integer_op: float, peak: dict[str, float]
) -> float:
    """The share of the core's peak (module docstring): ideal time ÷ actual time per item."""
    if not items_per_s_per_core or not math.isfinite(items_per_s_per_core):
        return math.nan
    return ideal_seconds(float_flop, integer_op, peak) * items_per_s_per_core


def achieved(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    """Items/s per core at the seed payload: each inference kind's loop at batch 1, each
    batched service's best batch in process, each service over HTTP (summary.csv)."""
    cores = max(1, run.server_cores)
    rows = []
    kinds = summary.assign(inference=[run.fact(s, "inference") for s in summary["service"]])
    loops = kinds.dropna(subset=["ceiling_rps"]).groupby(["inference", "variant"], sort=False)
    for (kind, variant), group in loops:
        rps = float(group["ceiling_rps"].iloc[0]) / cores
        rows.append((IN_PROCESS_B1, f"{kind} loop", variant, 1, rps))
    limits = batch_ceiling(run)
    if len(limits):
        # A batch path is one process with the services' intra-op threads.
        threads = min(cores, max(1, int(run.pinning.get("threads") or 1)))
        best = limits.groupby(["service", "variant"], sort=False)["items_per_s"].idxmax()
        for r in limits.loc[best].itertuples(index=False):
            rate = float(r.items_per_s) / threads
            rows.append((IN_PROCESS_BEST, str(r.service), r.variant, int(r.batch_size), rate))
    for r in summary.itertuples(index=False):
        rows.append((HTTP, str(r.service), r.variant, math.nan, float(r.rps) / cores))
    return pd.DataFrame(
        rows, columns=["where", "service", "variant", "batch_size", "items_per_s_per_core"]
    )


def peak_share(run: Run, summary: pd.DataFrame, write: bool = False) -> pd.DataFrame:
    """peak_share.csv (:data:`COLUMNS`; its header only when the run has no peak or no FLOP
    counts), written into the run directory when ``write``."""
    table = _peak_share(run, summary)
    if write:
        table.to_csv(run.path / "peak_share.csv", index=False)
    return table


def _peak_share(run: Run, summary: pd.DataFrame) -> pd.DataFrame:
    peak = peaks(run)
    flops = per_item(run, run.seed_payload)
    if not peak or flops.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = achieved(run, summary)
    out = out[out["variant"].isin(flops.index)].reset_index(drop=True)
    float_flop = out["variant"].map(flops["float_flop"]).astype(float)
    integer_op = out["variant"].map(flops["integer_op"]).astype(float)
    out["gflop_per_item"] = (float_flop + integer_op) / 1e9
    out["achieved_gops"] = out["items_per_s_per_core"] * out["gflop_per_item"]
    out["peak_share"] = [
        share(rate, f, i, peak)
        for rate, f, i in zip(out["items_per_s_per_core"], float_flop, integer_op, strict=True)
    ]
    return out[COLUMNS]


def pct(share: float) -> str:
    return f"{share * 100:.0f} %"


def sentence(run: Run, table: pd.DataFrame) -> str | None:
    """What the shares say, for the fp32 model: the peak, the fastest batch path one text at
    a time and at its best batch (so the batching gain's ceiling on this core is 1 ÷ the
    first share), and the fastest service over HTTP."""
    peak = peaks(run)
    fp32 = table[table["variant"] == "fp32"]
    if fp32.empty or not peak:
        return None
    text = (
        f"This core's matrix kernels (ONNX Runtime, one thread) peak at **{peak['fp32']:.0f} "
        f"GFLOP/s** in fp32 and {peak.get('int8', math.nan):.0f} GOP/s in int8."
    )
    best = fp32[fp32["where"] == IN_PROCESS_BEST]
    if len(best):
        top = best.loc[best["peak_share"].idxmax()]
        limits = batch_ceiling(run).set_index(["service", "variant", "batch_size"])
        gain = float(limits.loc[(top["service"], "fp32", int(top["batch_size"])), "gain"])
        alone = float(top["peak_share"]) / gain
        text += (
            f" With fp32, {run.label(str(top['service']))}'s batch path runs one text at a "
            f"time at {pct(alone)} of it and {int(top['batch_size'])} at once at "
            f"{pct(float(top['peak_share']))}: even reaching the peak, batching could buy at "
            f"most {1 / alone:.1f}× on this core; it bought {gain:.2f}×."
        )
    http = fp32[fp32["where"] == HTTP]
    if len(http):
        fastest = http.loc[http["peak_share"].idxmax()]
        text += (
            f" Over HTTP the fastest, {run.label(str(fastest['service']))}, runs at "
            f"{pct(float(fastest['peak_share']))} of the peak."
        )
    return text


def name(run: Run, service: str) -> str:
    """A row's service as a reader knows it: a registry service's label, a loop's own name
    ('python loop': no service of the registry)."""
    return run.label(service) if service in run.facts.index else service


def shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`peak_share` as the report prints it: headed in words, rounded for reading."""
    names = [name(run, s) for s in table["service"]]
    return pd.DataFrame(
        {
            "measured": table["where"],
            "service": names,
            "model": table["variant"],
            "batch": table["batch_size"].map(lambda b: "" if pd.isna(b) else f"{int(b)}"),
            "texts/s per core": table["items_per_s_per_core"].round(0),
            "GFLOP per text": table["gflop_per_item"].round(3),
            "GFLOP/s achieved": table["achieved_gops"].round(1),
            "% of the core's peak": (table["peak_share"] * 100).round(0),
        }
    ).reset_index(drop=True)
