"""How steady the machine and the measurement were: points.csv and the drift monitor (drift.csv).

* :func:`points_table` - each point's rounds, why it stopped, whether it converged, its
  wall time; :func:`unconverged` - the points whose ratios did not reach the target.
* :func:`drift_range_pct` - how far the drift probe moved over the interleaved phase.
* :func:`drift_spans` - where each point sits on the probe's time axis.
* :func:`loadgen_headroom` - how much of its CPU the load generator used, per point and in
  the open loop; :func:`headroom_sentence` says it in one line.

Without either file (a run that stopped before it measured a point), every function returns
an empty frame or NaN (the report then says the run has no such record).
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import ratios, stats
from servebench.rundir.reader import Run

POINT_COLUMNS = [
    "payload", "concurrency", "units", "rounds", "stop", "converged", "max_half_width_pct",
    "noise_floor_pct", "wall_s",
]  # fmt: skip
SPAN_COLUMNS = ["payload", "concurrency", "start_s", "end_s", "rounds"]
#: Above this share of its CPU a load generator may set the pace instead of the server.
LOADGEN_BUSY = 0.5
HEADROOM_COLUMNS = [
    "phase", "payload", "concurrency", "bursts", "busiest_share", "busiest", "over_half",
]  # fmt: skip


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


def _shares(frame: pd.DataFrame | None) -> pd.DataFrame:
    """``frame``'s rows that recorded the load generator, with its CPU ``share``."""
    if frame is None or "loadgen_cpu_s" not in frame:
        return pd.DataFrame(columns=["service", "variant", "payload", "concurrency", "share"])
    cpu = pd.to_numeric(frame["loadgen_cpu_s"], errors="coerce")
    wall = pd.to_numeric(frame["loadgen_wall_s"], errors="coerce")
    known = frame.assign(share=cpu / wall)
    return known[(wall > 0) & cpu.notna()]


def loadgen_headroom(run: Run) -> pd.DataFrame:
    """Per closed-loop point (every burst: the seed table's, the A/A control's and the
    ladder's rungs' too) and for the open loop's attacks: how many bursts, the highest share
    of its pinned CPU the load generator used in one (``loadgen_cpu_s`` ÷ ``loadgen_wall_s``),
    whose burst that was, and how many passed :data:`LOADGEN_BUSY` (columns
    :data:`HEADROOM_COLUMNS`); empty for a run that did not record it."""
    closed = pd.concat(
        [_shares(f) for f in (run.loadtests, run.seed_table_bursts, run.controls, run.rungs)],
        ignore_index=True,
    )
    rows = []
    groups = [("closed loop", key, g) for key, g in closed.groupby(["payload", "concurrency"])]
    opened = _shares(run.openloop)
    if len(opened):
        groups.append(("open loop", (opened["payload"].iloc[0], math.nan), opened))
    for phase, (payload, concurrency), g in groups:
        top = g.loc[g["share"].idxmax()]
        rows.append(
            {
                "phase": phase,
                "payload": str(payload),
                "concurrency": concurrency,
                "bursts": len(g),
                "busiest_share": float(top["share"]),
                "busiest": run.unit_label(str(top["service"]), str(top["variant"])),
                "over_half": int((g["share"] > LOADGEN_BUSY).sum()),
            }
        )
    return pd.DataFrame(rows, columns=HEADROOM_COLUMNS)


def headroom_sentence(table: pd.DataFrame) -> str:
    """'The load generator's busiest burst used 62 % of its CPU (Rust native batched · int8,
    seed c=50); 3 of 1,204 bursts passed 50 %: ...' from :func:`loadgen_headroom`."""
    if table.empty:
        return "The run did not record the load generator's CPU."
    top = table.loc[table["busiest_share"].idxmax()]
    where = (
        "the open loop"
        if top["phase"] == "open loop"
        else (f"{top['payload']} c={int(top['concurrency'])}")
    )
    text = (
        f"The load generator's busiest burst used {top['busiest_share']:.0%} of its CPU "
        f"({top['busiest']}, {where})"
    )
    over, bursts = int(table["over_half"].sum()), int(table["bursts"].sum())
    if over == 0:
        return text + f"; none of {bursts:,} bursts passed {LOADGEN_BUSY:.0%}: it kept up."
    return (
        text + f"; {over} of {bursts:,} bursts passed {LOADGEN_BUSY:.0%}: there the generator, "
        "not the server, may have set the pace."
    )


def headroom_shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`loadgen_headroom` as the report prints it: headed in words, shares in %."""
    concurrency = ["–" if pd.isna(c) else str(int(c)) for c in table["concurrency"].astype(float)]
    return pd.DataFrame(
        {
            "phase": table["phase"],
            "payload": table["payload"],
            "clients": concurrency,
            "bursts": table["bursts"],
            "busiest burst, % of its CPU": (table["busiest_share"] * 100).round(0),
            "whose": table["busiest"],
            f"bursts over {LOADGEN_BUSY:.0%}": table["over_half"],
        }
    )


def points_shown(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`points_table` as the report prints it: headed in words, no index."""
    return pd.DataFrame(
        {
            "payload": table["payload"],
            "clients": table["concurrency"],
            "units": table["units"],
            "rounds": table["rounds"],
            "stopped by": table["stop"],
            "converged": table["converged"].map(ratios.yes_no),
            "widest interval, ± %": table["max_half_width_pct"].round(1),
            "noise floor, ± %": table["noise_floor_pct"].round(1),
            "wall time, s": table["wall_s"].round(0),
        }
    ).reset_index(drop=True)
