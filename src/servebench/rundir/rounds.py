"""How often a run measured each point: rounds of an interleaved run, or repeats of an older one.

An interleaved run (issue 12) measures each point in *rounds*, every unit one short burst per
round, until its paired ratios are precise enough (``parameters.min_rounds`` ...
``max_rounds``, ``target_ci_pct``, ``point_budget_s``); points.csv says how many rounds each
point got. Runs made before had a fixed ``parameters.repeats``, each a pass over every
configuration. Both keep the count in the ``repeat`` column of the measured files, so the
report's words, not its arithmetic, depend on which: :func:`rounds_of` says which, and how many.

Kept apart from :mod:`servebench.rundir.reader` so that code reading published data (the
README, which has metadata.json and maybe points.csv but no raw files) says the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: The study parameters of an interleaved run (an older run has ``repeats`` instead).
INTERLEAVED_PARAMETERS = ("min_rounds", "max_rounds", "target_ci_pct", "point_budget_s")
#: The precision target when a run does not record one (config.py's default).
DEFAULT_TARGET_CI_PCT = 3.0


@dataclass(frozen=True)
class Rounds:
    """``low``..``high`` rounds (repeats) per point; ``None`` when the run does not say.

    ``measured`` is True when the counts are what points.csv recorded, False when they are
    what the parameters allowed."""

    interleaved: bool
    low: int | None
    high: int | None
    measured: bool
    target_ci_pct: float

    @property
    def word(self) -> str:
        """'round' in an interleaved run, 'repeat' in one made before."""
        return "round" if self.interleaved else "repeat"

    @property
    def count(self) -> str:
        """'3', '3–12', or '?' when unknown."""
        if self.low is None or self.high is None:
            return "?"
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"

    @property
    def text(self) -> str:
        """'3–12 rounds', '3 repeats', '3–20 rounds (adaptive)' (parameters, no points.csv)."""
        plural = f"{self.count} {self.word}s" if self.count != "?" else f"{self.word}s"
        return plural if self.measured or not self.interleaved else f"{plural} (adaptive)"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def rounds_of(parameters: dict[str, Any], points: pd.DataFrame | None = None) -> Rounds:
    """The rounds of a run from its ``parameters`` (metadata.json) and points.csv (if any).

    Interleaved when points.csv exists or the parameters name rounds; then the counts are
    points.csv's ``rounds`` (fewest, most), else ``min_rounds``/``max_rounds``. Otherwise
    the run's ``repeats``, the same for every point."""
    target = _number(parameters.get("target_ci_pct"))
    target = DEFAULT_TARGET_CI_PCT if target is None else target
    interleaved = points is not None or any(k in parameters for k in INTERLEAVED_PARAMETERS)
    if points is not None and "rounds" in points and points["rounds"].notna().any():
        counts = points["rounds"].dropna().astype(int)
        return Rounds(True, int(counts.min()), int(counts.max()), True, target)
    if interleaved:
        low, high = _number(parameters.get("min_rounds")), _number(parameters.get("max_rounds"))
        return Rounds(
            True,
            None if low is None else int(low),
            None if high is None else int(high),
            False,
            target,
        )
    repeats = _number(parameters.get("repeats"))
    n = None if repeats is None else int(repeats)
    return Rounds(False, n, n, n is not None, target)


def read_rounds(run_dir: str | Path, parameters: dict[str, Any]) -> Rounds:
    """:func:`rounds_of` for a directory that may hold a points.csv (a run, or published data)."""
    path = Path(run_dir) / "points.csv"
    return rounds_of(parameters, pd.read_csv(path) if path.is_file() else None)
