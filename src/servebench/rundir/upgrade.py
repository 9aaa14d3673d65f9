"""Older run directories in today's shape: the one place that knows what the files used to be.

Every frame the reader and the published-data readers take from a run directory passes
through :func:`upgrade_frame` (or :func:`read_summary`), so that nothing past them sees an
old column name. The old shapes still read:

* An interleaved run written before each column got one meaning (issue 21): ``repeat`` was
  the round in loadtests.csv, requests.csv.gz and drift.csv, the ceiling's pass in
  ceiling.csv and batch_ceiling.csv, and the start number in coldstarts.csv; stages.csv had
  a ``repeat`` that was always 0 (dropped); summary.csv and per_config.csv counted rounds in
  ``repeats``.
* A summary.csv published before model variants (no ``variant`` column: every row
  measured fp32) or before interleaving (no paired ratios, no precision target), or before
  the seed table had runs of its own (no ``table_rps``: its ``rps`` is the table's).
* A ceiling.csv or batch_ceiling.csv timed in two passes apart from the rounds (issue 21's
  ``ceiling_pass``, no ``round``): their ceilings read pooled as before, and no in-process
  ratio is paired (analysis/inprocess.py needs the rounds).
* A loadtests.csv without ``seed_table`` (the reader reads every row as a paired round):
  its seed-point rounds were all full ``hey -n`` runs, so the seed table takes them.

Runs made before interleaving (a fixed ``parameters.repeats``, no points.csv) are no longer
read as raw runs (:func:`unreadable` says why): their bursts were minutes apart, so
their paired ratios are not the study's. Their summary.csv is still read as published data
(``servebench.compare`` falls back to it), like ``data/reference/``'s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

#: What every run made before model variants measured.
BEFORE_VARIANTS = "fp32"
#: summary.csv's columns an older summary lacks, with what they are there: fp32's factor to
#: itself is 1; nothing was paired per round, and no target was set.
SUMMARY_ADDED: dict[str, Any] = {
    "variant_factor": 1.0,
    **dict.fromkeys(
        ("ratio", "ratio_ci_low", "ratio_ci_high", "variant_factor_ci_low",
         "variant_factor_ci_high", "converged"),
        math.nan,
    ),
}  # fmt: skip

#: Old column -> today's, per file (docs/DATA.md names today's).
RENAMED: dict[str, dict[str, str]] = {
    "loadtests.csv": {"repeat": "round"},
    "requests.csv.gz": {"repeat": "round"},
    "drift.csv": {"repeat": "round"},
    "ceiling.csv": {"repeat": "ceiling_pass"},
    "batch_ceiling.csv": {"repeat": "ceiling_pass"},
    "coldstarts.csv": {"repeat": "start"},
    "summary.csv": {"repeats": "rounds"},
    "per_config.csv": {"repeats": "rounds"},
}
#: Old columns that meant nothing (stages.csv's ``repeat`` was always 0).
DROPPED: dict[str, list[str]] = {"stages.csv": ["repeat"]}


def unreadable(path: Path, parameters: dict[str, Any]) -> str | None:
    """Why the run at ``path`` is not read as raw rows (None when it is): a run made before
    interleaving, the only one with ``parameters.repeats`` (the config refuses it since)."""
    if "repeats" not in parameters:
        return None
    return (
        f"{path} was measured before interleaving (parameters.repeats, no rounds): its raw "
        "rows are no longer read; its summary.csv is (python -m servebench.compare)"
    )


def upgrade_frame(file: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as read from ``file`` (e.g. ``"loadtests.csv"``) with today's columns."""
    renamed = {old: new for old, new in RENAMED.get(file, {}).items() if old in frame}
    frame = frame.rename(columns=renamed) if renamed else frame
    dropped = [c for c in DROPPED.get(file, []) if c in frame]
    return frame.drop(columns=dropped) if dropped else frame


def upgrade_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary.csv in today's shape: ``rounds``; ``variant`` (fp32) right after ``service``
    when it was published before variants; :data:`SUMMARY_ADDED` where missing."""
    summary = upgrade_frame("summary.csv", summary).copy()
    if "variant" not in summary:
        summary.insert(1 if "service" in summary else 0, "variant", BEFORE_VARIANTS)
    for column, value in SUMMARY_ADDED.items():
        if column not in summary:
            summary[column] = value
    if "table_rps" not in summary and "rps" in summary:
        # Before the seed table had its own runs, every seed-point round was such a run.
        summary.insert(list(summary.columns).index("rps"), "table_rps", summary["rps"])
    return summary


def read_summary(run_dir: str | Path) -> pd.DataFrame:
    """A run directory's (or published data's) summary.csv in today's shape."""
    return upgrade_summary(pd.read_csv(Path(run_dir) / "summary.csv"))
