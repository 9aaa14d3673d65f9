"""How steady the machine and the measurement were: points.csv and the drift monitor (drift.csv).

* :func:`points_table` - each point's rounds, why it stopped, whether it converged, its
  wall time; :func:`unconverged` - the points whose ratios did not reach the target.
* :func:`drift_range_pct` - how far the drift probe moved over the interleaved phase.
* :func:`drift_spans` - where each point sits on the probe's time axis.

Without either file (a run that stopped before it measured a point), every function returns
an empty frame or NaN (the report then says the run has no such record).
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import stats
from servebench.rundir.reader import Run

POINT_COLUMNS = [
    "payload", "concurrency", "units", "rounds", "stop", "converged", "max_half_width_pct",
    "noise_floor_pct", "wall_s",
]  # fmt: skip
SPAN_COLUMNS = ["payload", "concurrency", "start_s", "end_s", "rounds"]


def points_table(run: Run) -> pd.DataFrame:
    """points.csv in display order (columns :data:`POINT_COLUMNS`); empty without it."""
    if run.points is None or run.points.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    pts = run.points.copy()
    pts["converged"] = pts["converged"].astype(str).str.lower().isin(["true", "1"])
    for column in (c for c in POINT_COLUMNS if c not in pts):
        pts[column] = math.nan
    return run.in_display_order(pts[POINT_COLUMNS], ["payload", "concurrency"])


def unconverged(run: Run) -> pd.DataFrame:
    """The points that stopped before every ratio's interval got within the target."""
    pts = points_table(run)
    return pts[~pts["converged"].astype(bool)].reset_index(drop=True)


def drift_range_pct(run: Run) -> float:
    """The probe's range over the phase, ``(max − min) / median × 100`` (the spread
    :func:`servebench.analysis.stats.spread_pct` gives the rounds); NaN without drift.csv."""
    if run.drift is None or run.drift.empty:
        return math.nan
    return stats.spread_pct(run.drift["probe_us"].to_numpy(float))


def drift_spans(run: Run) -> pd.DataFrame:
    """Each point's stretch of the probe's clock: from the probe before its first round to
    the probe after its last (columns :data:`SPAN_COLUMNS`, in the order measured)."""
    if run.drift is None or run.drift.empty:
        return pd.DataFrame(columns=SPAN_COLUMNS)
    drift = run.drift.sort_values("seq").reset_index(drop=True)
    after = drift[drift["round"] >= 0]
    rows = []
    for (payload, concurrency), g in after.groupby(["payload", "concurrency"], sort=False):
        first = int(g.index.min())
        start = float(drift.at[first - 1, "elapsed_s"]) if first > 0 else 0.0
        rows.append(
            {
                "payload": str(payload),
                "concurrency": int(concurrency),
                "start_s": start,
                "end_s": float(g["elapsed_s"].max()),
                "rounds": int(g["round"].nunique()),
            }
        )
    return pd.DataFrame(rows, columns=SPAN_COLUMNS)
