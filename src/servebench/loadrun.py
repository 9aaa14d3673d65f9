"""One closed-loop load run as the study records it, and the one rule for its errors and
its Total.

Both load generators end in the same record: hey (one body for the whole run; its CSV omits
requests that failed at the connection level) and vegeta with a target per request (the
mixed workload; it records every request, status 0 when no answer came). The report re-derives
the seed's numbers from the same rows (``requests.csv.gz``), so the rule below is the only
definition of what counts as an error and how long a run took.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def is_error_status(status: ArrayLike) -> np.ndarray:
    """True where an HTTP status is not 2xx (a missing status, or 0, counts as an error)."""
    s = pd.to_numeric(pd.Series(np.asarray(status).ravel()), errors="coerce").to_numpy(float)
    return ~((s >= 200) & (s < 300))


def error_count(status: ArrayLike, requested: int | None = None) -> int:
    """Requests without a 2xx answer: the recorded rows that are not 2xx, plus the requests
    sent that left no row (``requested`` minus the rows; hey drops outright failures).
    ``requested`` None: only the rows are known."""
    codes = np.asarray(status).ravel()
    ok = int(codes.size - is_error_status(codes).sum())
    sent = codes.size if requested is None else max(int(requested), codes.size)
    return sent - ok


def total_seconds(records: pd.DataFrame, fallback: float = math.nan) -> float:
    """hey's and vegeta's 'Total': from the first send to the last answer,
    ``max(offset_s + response_time_s)``; ``fallback`` when there are no rows."""
    if records.empty:
        return fallback
    ends = records["offset_s"].to_numpy(float) + records["response_time_s"].to_numpy(float)
    return float(np.nanmax(ends))


@dataclass(frozen=True)
class ClosedLoopRun:
    """One closed-loop run: a row per recorded request (``status_code``, 0 for no answer;
    ``offset_s`` from the run's start; ``response_time_s``; the generator's other columns),
    the requests it was asked to send, its concurrency, the wall time around it and the CPU time
    the load generator used in it."""

    records: pd.DataFrame
    requested: int
    concurrency: int
    wall_s: float
    #: The load generator's CPU time over the run (user + system; NaN when not measured).
    loadgen_cpu_s: float = math.nan

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer, of any status."""
        return int((pd.to_numeric(self.records["status_code"], errors="coerce") > 0).sum())

    @property
    def errors(self) -> int:
        return error_count(self.records["status_code"], self.requested)

    @property
    def total_s(self) -> float:
        return total_seconds(self.records, fallback=self.wall_s)
