"""How often a run measured each point: its rounds, and the defaults of what the run records.

A run measures each point in *rounds* (issue 12), every unit one short burst per round,
until its paired ratios are precise enough (``parameters.min_rounds`` ... ``max_rounds``,
``target_ci_pct``, ``point_budget_s``); points.csv says how many rounds each point got, and
the ``round`` column of the measured files which round a burst belongs to.

Kept apart from :mod:`servebench.rundir.reader` so that code reading published data (the
README, which has metadata.json and maybe points.csv but no raw files) says the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: The precision target when a run does not record one (config.py's default).
DEFAULT_TARGET_CI_PCT = 3.0
#: Rounds whose Requests/sec spread ((max - min) / median) exceeds this many percent are
#: flagged unstable, when a run does not record its ``unstable_pct``. Here rather than in
#: the statistics so that the reader, below the analysis, needs nothing from above it.
DEFAULT_UNSTABLE_PCT = 10.0


@dataclass(frozen=True)
class Rounds:
    """``low``..``high`` rounds per point; ``None`` when the run does not say.

    ``measured`` is True when the counts are what points.csv recorded, False when they are
    what the parameters allowed."""

    low: int | None
    high: int | None
    measured: bool
    target_ci_pct: float

    @property
    def count(self) -> str:
        """'3', '3–12', or '?' when unknown."""
        if self.low is None or self.high is None:
            return "?"
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"

    @property
    def text(self) -> str:
        """'3–12 rounds', '3–20 rounds (adaptive)' (the parameters, no points.csv), 'rounds'."""
        if self.count == "?":
            return "rounds"
        return f"{self.count} rounds" + ("" if self.measured else " (adaptive)")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def rounds_of(parameters: dict[str, Any], points: pd.DataFrame | None = None) -> Rounds:
    """The rounds of a run from its ``parameters`` (metadata.json) and points.csv (if any):
    points.csv's ``rounds`` (fewest, most), else ``min_rounds``/``max_rounds``."""
    target = _number(parameters.get("target_ci_pct"))
    target = DEFAULT_TARGET_CI_PCT if target is None else target
    if points is not None and "rounds" in points and points["rounds"].notna().any():
        counts = points["rounds"].dropna().astype(int)
        return Rounds(int(counts.min()), int(counts.max()), True, target)
    low, high = _number(parameters.get("min_rounds")), _number(parameters.get("max_rounds"))
    return Rounds(
        None if low is None else int(low), None if high is None else int(high), False, target
    )


def read_rounds(run_dir: str | Path, parameters: dict[str, Any]) -> Rounds:
    """:func:`rounds_of` for a directory that may hold a points.csv (a run, or published data)."""
    path = Path(run_dir) / "points.csv"
    return rounds_of(parameters, pd.read_csv(path) if path.is_file() else None)
