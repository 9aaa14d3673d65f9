"""What serving costs: core-hours and dollars per million requests, and memory per core.

The price is a study parameter (configs/default.yaml: a named public on-demand instance with
its source), recorded with the run: ``price_usd_per_hour`` for ``price_cores`` cores and
``price_memory_gib`` of memory. A core-hour costs the instance's hour ÷ its cores; a service
runs on the run's server cores, so

    core-hours per million requests = core-seconds per request × 10⁶ ÷ 3600
    $ per million requests          = core-hours per million × $ per core-hour

where a request's core-seconds are either what it **used** (``cpu_s_per_req``: the server's
CPU time over a burst ÷ its answers, at the seed point, where the core is saturated) or what
a core **provisioned** for a rate costs whether busy or not (server cores ÷ the rate; the
decision table's, analysis/decision.py). The two agree at saturation on one core; a rate a
latency bound allows is below saturation, so it costs more per request.

Memory: the instance gives ``price_memory_gib ÷ price_cores`` per core; a service's peak RSS
÷ its server cores against it says whether that instance's memory would hold it.

* :func:`price` - a run's price from its parameters, or None for a run without one;
* :func:`usd_per_million` / :func:`core_hours_per_million` - the arithmetic;
* :func:`cost_table` - cost.csv: each service × variant at the seed point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from servebench.rundir.reader import Run

#: What the columns of cost.csv mean: docs/DATA.md.
COLUMNS = [
    "service", "variant", "rps", "cpu_s_per_req", "core_hours_per_million",
    "usd_per_million", "peak_rss_mb", "rss_mb_per_core", "memory_share",
]  # fmt: skip


@dataclass(frozen=True)
class Price:
    """A priced instance: its name and source, dollars an hour, cores and memory."""

    instance: str
    usd_per_hour: float
    cores: int
    memory_gib: float

    @property
    def usd_per_core_hour(self) -> float:
        return self.usd_per_hour / self.cores

    @property
    def memory_mb_per_core(self) -> float:
        """MiB per core, as RSS is counted (peak_rss_mb is MiB)."""
        return self.memory_gib * 1024 / self.cores

    def describe(self) -> str:
        return (
            f"{self.instance}: ${self.usd_per_hour:g} an hour for {self.cores} cores and "
            f"{self.memory_gib:g} GiB, ${self.usd_per_core_hour:.4f} a core-hour"
        )


def price(p: Mapping[str, Any]) -> Price | None:
    """The price a run recorded (its metadata parameters); None when it has none, as in runs
    from before the study priced its cores."""
    try:
        found = Price(
            instance=str(p["price_instance"]),
            usd_per_hour=float(p["price_usd_per_hour"]),
            cores=int(p["price_cores"]),
            memory_gib=float(p["price_memory_gib"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    return found if found.cores > 0 else None


def core_hours_per_million(core_seconds_per_request: float) -> float:
    """Core-hours a million requests take at ``core_seconds_per_request``."""
    return core_seconds_per_request * 1e6 / 3600


def usd_per_million(core_seconds_per_request: float, cost: Price) -> float:
    """Dollars a million requests cost at ``core_seconds_per_request`` (NaN stays NaN)."""
    return core_hours_per_million(core_seconds_per_request) * cost.usd_per_core_hour


def provisioned_core_seconds(rate: float, cores: int) -> float:
    """Core-seconds per request of ``cores`` kept for a rate of ``rate`` requests/s."""
    if not (math.isfinite(rate) and rate > 0):
        return math.nan
    return cores / rate


def cost_table(run: Run, summary: pd.DataFrame, write: bool = False) -> pd.DataFrame:
    """cost.csv (:data:`COLUMNS`): each service × variant at the seed point, from summary.csv's
    medians: the CPU a request used, what a million cost, and the peak RSS per server core
    against the priced instance's memory per core. Header only when the run has no price.
    Written into the run directory when ``write``."""
    cost = price(run.parameters)
    table = pd.DataFrame(columns=COLUMNS)
    if cost is not None and len(summary):
        cores = max(1, run.server_cores)
        cpu = summary["cpu_s_per_req"].astype(float)
        rss_per_core = summary["peak_rss_mb"].astype(float) / cores
        table = pd.DataFrame(
            {
                "service": summary["service"],
                "variant": summary["variant"],
                "rps": summary["rps"].astype(float),
                "cpu_s_per_req": cpu,
                "core_hours_per_million": cpu.map(core_hours_per_million),
                "usd_per_million": [usd_per_million(c, cost) for c in cpu],
                "peak_rss_mb": summary["peak_rss_mb"].astype(float),
                "rss_mb_per_core": rss_per_core,
                "memory_share": rss_per_core / cost.memory_mb_per_core,
            }
        )[COLUMNS].reset_index(drop=True)
    if write:
        table.to_csv(run.path / "cost.csv", index=False)
    return table


def shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`cost_table` as the report prints it: headed in words, rounded for reading."""
    return pd.DataFrame(
        {
            "service": [run.label(str(s)) for s in table["service"]],
            "model": table["variant"],
            "req/s": table["rps"].round(0),
            "CPU ms per request": (table["cpu_s_per_req"] * 1e3).round(2),
            "core-hours per million": table["core_hours_per_million"].round(2),
            "$ per million requests": table["usd_per_million"].round(3),
            "peak RSS per core (MB)": table["rss_mb_per_core"].round(0),
            "% of the instance's memory per core": (table["memory_share"] * 100).round(0),
        }
    ).reset_index(drop=True)
