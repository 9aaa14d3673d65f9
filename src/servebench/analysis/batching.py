"""Dynamic batching: what the batched services gain over their unbatched twins, and why.

* :func:`batch_ceiling` - the in-process batch path per batched service, variant and batch
  size (batch_ceiling.csv): items/s and its gain over the same path at batch 1.
* :func:`batch_sizes` - the batch sizes the services actually formed, per point, from the
  requests whose answers carried ``x-batch-size`` (the mixed workload, the c=1 stage timings).
* :func:`run_shapes` - how full the runs of a batched service's bursts were and how much of
  them was padding, per point, from the services' own run counts (loadtests.csv ``batch_*``:
  every burst, hey's at the seed point included, which keep no headers).
* :func:`twin_table` - each batched service against its unbatched twin at every point both
  measured: requests/sec ratio, p50 and p99 side by side, the median batch size, the mean
  rows per run and padding share, and the requests/sec over the batch-1 in-process ceiling of
  the same variant.
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import measures, ratios, tables
from servebench.rundir.reader import Run

BATCH_CEILING_COLUMNS = [
    "service", "impl", "variant", "batch_size", "calls", "total_us", "items_per_s", "gain",
]  # fmt: skip
TWIN_COLUMNS = [
    "service", "variant", "twin", "payload", "concurrency", "rps", "twin_rps", "rps_ratio",
    "rps_ratio_ci_low", "rps_ratio_ci_high", "p50_s", "twin_p50_s", "p99_s", "twin_p99_s",
    "median_batch", "mean_batch", "rows_per_run", "padding_share", "x_batch1_ceiling",
]  # fmt: skip
POINT = ["service", "variant", "payload", "concurrency"]
#: loadtests.csv's run counts of a batched service's burst (docs/DATA.md).
RUN_COUNTS = ["batch_runs", "batch_rows", "batch_tokens", "batch_positions"]
RUN_SHAPE_COLUMNS = [*POINT, "bursts", "rows_per_run", "padding_share"]
RATIO_INTERVAL = ["rps_ratio", "rps_ratio_ci_low", "rps_ratio_ci_high"]


def batched_services(run: Run) -> list[str]:
    """The run's batched services that have an unbatched twin, in display order."""
    return [s for s in run.services_in_order() if bool(run.fact(s, "batching"))]


def batch_ceiling(run: Run) -> pd.DataFrame:
    """service x variant x batch size: median call time, items/s, gain over batch 1."""
    frame = run.batch_ceiling
    if frame is None or frame.empty:
        return pd.DataFrame(columns=BATCH_CEILING_COLUMNS)
    keys = ["service", "impl", "variant", "batch_size"]
    grouped = frame.groupby(keys, sort=False)
    out = grouped["total_us"].median().reset_index()
    out["calls"] = grouped.size().to_numpy()
    out["items_per_s"] = out["batch_size"] * 1e6 / out["total_us"]
    first = out.sort_values("batch_size").groupby(["service", "variant"])["items_per_s"].first()
    out["gain"] = [
        r.items_per_s / first[(r.service, r.variant)] for r in out.itertuples(index=False)
    ]
    return run.in_display_order(out[BATCH_CEILING_COLUMNS], ["service", "variant", "batch_size"])


def batch_sizes(run: Run) -> pd.DataFrame:
    """Per request with a batch size: service, variant, payload, concurrency, batch_size,
    queue_us (the mixed workload's requests and the c=1 stage timings)."""
    cols = ["service", "variant", "payload", "concurrency", "batch_size", "queue_us"]
    frames = []
    if "batch_size" in run.requests:
        frames.append(run.requests.dropna(subset=["batch_size"]).reindex(columns=cols))
    if run.stages is not None:  # every stages.csv row has the column, empty when unbatched
        stages = run.stages.dropna(subset=["batch_size"]).assign(concurrency=1)
        frames.append(stages.reindex(columns=cols))
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True)


def run_shapes(bursts: pd.DataFrame) -> pd.DataFrame:
    """Per point with counted bursts: ``rows_per_run`` = Σ batch_rows ÷ Σ batch_runs and
    ``padding_share`` = 1 − Σ batch_tokens ÷ Σ batch_positions over its bursts (sums, not a
    mean of ratios: a burst weighs by the runs and positions it made). Bursts without counts
    (unbatched services, runs written before the columns) are left out, so a point with none
    has no row; NaN where a sum it divides by is 0 (every run of the point failed)."""
    if bursts.empty or not set(RUN_COUNTS) <= set(bursts):
        return pd.DataFrame(columns=RUN_SHAPE_COLUMNS)
    counted = bursts.dropna(subset=RUN_COUNTS)
    if counted.empty:
        return pd.DataFrame(columns=RUN_SHAPE_COLUMNS)
    sums = counted.groupby(POINT, sort=False)[RUN_COUNTS].sum().astype(float)
    runs, positions = sums["batch_runs"], sums["batch_positions"]
    out = pd.DataFrame(
        {
            "bursts": counted.groupby(POINT, sort=False).size(),
            "rows_per_run": sums["batch_rows"] / runs.where(runs > 0),
            "padding_share": 1 - sums["batch_tokens"] / positions.where(positions > 0),
        }
    )
    return out.reset_index()[RUN_SHAPE_COLUMNS]


def point_bursts(run: Run) -> pd.DataFrame:
    """Every burst of the run's services: the paired rounds' and the seed table's."""
    if run.seed_table_bursts is None:
        return run.loadtests
    return pd.concat([run.loadtests, run.seed_table_bursts], ignore_index=True)


def twin_table(run: Run) -> pd.DataFrame:
    """Each batched service beside its twin, at every (variant, payload, concurrency).

    ``rps_ratio`` is the paired batched ÷ twin ratio of the same rounds (ratios.csv, kind
    ``batching``) with its 95 % interval; where no round paired them, the ratio of the two
    medians without an interval."""
    pc = tables.per_config(run).set_index(["service", "variant", "payload", "concurrency"])
    paired = ratios.estimates(tables.ratios(run), "batching")
    sizes = batch_sizes(run)
    shapes = {
        (r.service, r.variant, r.payload, int(r.concurrency)): r
        for r in run_shapes(point_bursts(run)).itertuples(index=False)
    }
    rows = []
    for service in batched_services(run):
        twin = str(run.fact(service, "twin"))
        for key, r in pc.loc[[service]].iterrows():
            _, variant, payload, concurrency = key
            other = (twin, variant, payload, concurrency)
            t = pc.loc[other] if other in pc.index else None
            mine = sizes[
                (sizes["service"] == service)
                & (sizes["variant"] == variant)
                & (sizes["payload"] == payload)
                & (sizes["concurrency"] == concurrency)
            ]["batch_size"]
            ceiling_rps, _ = measures.ceiling_for(run, service, variant)
            at = (service, variant, payload, int(concurrency))
            shape = shapes.get(at)
            ratio = (
                [float(paired.at[at, c]) for c in ratios.INTERVAL_COLUMNS]
                if at in paired.index
                else [r["rps"] / t["rps"] if t is not None else math.nan, math.nan, math.nan]
            )
            rows.append(
                {
                    "service": service,
                    "variant": variant,
                    "twin": twin,
                    "payload": payload,
                    "concurrency": int(concurrency),
                    "rps": r["rps"],
                    "twin_rps": t["rps"] if t is not None else math.nan,
                    "rps_ratio": ratio[0],
                    "rps_ratio_ci_low": ratio[1],
                    "rps_ratio_ci_high": ratio[2],
                    "p50_s": r["p50_s"],
                    "twin_p50_s": t["p50_s"] if t is not None else math.nan,
                    "p99_s": r["p99_s"],
                    "twin_p99_s": t["p99_s"] if t is not None else math.nan,
                    "median_batch": float(mine.median()) if len(mine) else math.nan,
                    "mean_batch": float(mine.mean()) if len(mine) else math.nan,
                    "rows_per_run": shape.rows_per_run if shape is not None else math.nan,
                    "padding_share": shape.padding_share if shape is not None else math.nan,
                    "x_batch1_ceiling": r["rps"] / ceiling_rps
                    if ceiling_rps and payload == run.seed_payload
                    else math.nan,
                }
            )
    frame = pd.DataFrame(rows, columns=TWIN_COLUMNS)
    return run.in_display_order(frame, ["service", "variant", "payload", "concurrency"])


def twin_shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`twin_table` as the report prints it: headed in words, no index, services by
    their labels, req/s to whole numbers, latencies in ms, shares in %."""

    def ms(column: str) -> pd.Series:
        return (table[column] * 1e3).round(1)

    view = pd.DataFrame(
        {
            "batched service": table["service"].map(run.label),
            "model": table["variant"],
            "twin": table["twin"].map(run.label),
            "payload": table["payload"],
            "clients": table["concurrency"],
            "req/s": table["rps"].round(0),
            "twin req/s": table["twin_rps"].round(0),
            "÷ twin [95 % CI]": [
                ratios.formatted(*(float(r[c]) for c in RATIO_INTERVAL))
                for _, r in table.iterrows()
            ],
            "p50 ms": ms("p50_s"),
            "twin p50 ms": ms("twin_p50_s"),
            "p99 ms": ms("p99_s"),
            "twin p99 ms": ms("twin_p99_s"),
            "median batch": table["median_batch"].round(1),
            "mean batch": table["mean_batch"].round(1),
            "texts per run": table["rows_per_run"].round(1),
            "padding, % of positions": (table["padding_share"] * 100).round(0),
            "÷ batch-1 limit": table["x_batch1_ceiling"].round(2),
        }
    )
    return view.reset_index(drop=True)


def ceiling_shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`batch_ceiling` as the report prints it: one row per batched service and
    model, texts/s per batch size to whole numbers."""
    wide = table.pivot_table(
        index=["service", "variant"], columns="batch_size", values="items_per_s", sort=False
    ).round(0)
    view = pd.DataFrame(
        {
            "batched service": [run.label(s) for s, _ in wide.index],
            "model": [v for _, v in wide.index],
        }
    )
    for size in wide.columns:
        view[f"batch {int(size)}, texts/s"] = wide[size].to_numpy()
    return view
