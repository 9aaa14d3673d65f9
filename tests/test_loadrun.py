"""The one rule for a closed-loop run's errors and Total (servebench.loadrun), as hey's rows
(outright failures left out) and vegeta's (every request, status 0 for no answer) record it."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from servebench import loadrun
from servebench.analysis import stats

pytestmark = pytest.mark.unit


def rows(status: list[int], offsets: list[float], times: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"status_code": status, "offset_s": offsets, "response_time_s": times})


def test_hey_and_vegeta_rows_of_the_same_run_count_the_same_errors() -> None:
    # Five requests sent: three 200s, one 503, one with no answer at all.
    hey_rows = rows([200, 503, 200, 200], [0.0, 0.1, 0.2, 0.3], [0.05, 0.05, 0.05, 0.4])
    vegeta_rows = rows([200, 503, 200, 200, 0], [0.0, 0.1, 0.2, 0.3, 0.4], [0.05] * 3 + [0.4, 0.1])
    hey = loadrun.ClosedLoopRun(hey_rows, requested=5, concurrency=2, wall_s=9.0)
    vegeta = loadrun.ClosedLoopRun(vegeta_rows, requested=5, concurrency=2, wall_s=9.0)
    assert hey.errors == vegeta.errors == 2
    assert hey.answered == vegeta.answered == 4
    assert hey.total_s == pytest.approx(0.7) and vegeta.total_s == pytest.approx(0.7)


def test_total_falls_back_to_the_wall_time_without_rows_and_errors_count_the_unsent() -> None:
    empty = loadrun.ClosedLoopRun(rows([], [], []), requested=3, concurrency=1, wall_s=1.5)
    assert empty.total_s == 1.5 and empty.errors == 3 and empty.answered == 0
    assert math.isnan(loadrun.total_seconds(rows([], [], [])))
    assert loadrun.error_count([200, 404]) == 1  # rows only: nothing was lost
    assert loadrun.error_count([200, 404], requested=1) == 1  # never fewer than the rows


def test_the_reports_summary_of_the_rows_uses_the_same_rule() -> None:
    hey_rows = rows([200, 503, 200, 200], [0.0, 0.1, 0.2, 0.3], [0.05, 0.05, 0.05, 0.4])
    summary = stats.hey_summary(hey_rows, n_expected=5)
    run = loadrun.ClosedLoopRun(hey_rows, requested=5, concurrency=2, wall_s=9.0)
    assert (summary.errors, summary.total_s) == (run.errors, run.total_s)
