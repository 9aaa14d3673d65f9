"""The open-loop phase: the highest fixed arrival rate whose p99 stays under the bound.

The search itself (vegeta attacks, growth then bisection) is `measure.vegeta.find_max_rate`;
this phase picks its starting rate from the closed-loop result and records every attack.
"""

from __future__ import annotations

import pandas as pd

from servebench.measure import vegeta
from servebench.measure.plan import Plan, Unit
from servebench.process import ServiceProcess
from servebench.rundir.writer import RunWriter
from servebench.say import say, unit_column


def openloop_search(plan: Plan, unit: Unit, proc: ServiceProcess, writer: RunWriter) -> float:
    """Search the rate on the seed payload; rows to openloop.csv; returns the best rate."""
    study = plan.study
    bound_s = study.openloop_bound_ms / 1000
    best, attacks = vegeta.find_max_rate(
        proc.url + "/age",
        plan.seed_body(),
        bound_s=bound_s,
        start_rate=start_rate(plan, unit, writer),
        duration_s=study.openloop_duration_s,
        max_steps=study.openloop_max_steps,
        cpus=plan.pinning.loadgen_cpus,
    )
    proc.check_alive()
    rows = vegeta.openloop_rows(unit.service.name, plan.seed_payload, attacks, bound_s)
    writer.append("openloop.csv", [{**unit.key(), **row} for row in rows])
    bound = f"p99 <= {study.openloop_bound_ms:g} ms"
    say(f"  {unit_column(unit.name)}open loop: {best:.1f} req/s with {bound}")
    return best


def start_rate(plan: Plan, unit: Unit, writer: RunWriter) -> float:
    """Half the closed-loop throughput at the seed point: the search then needs few steps."""
    path = writer.run_dir / "loadtests.csv"
    if not path.exists():
        return 10.0
    runs = pd.read_csv(path)
    seed_point = runs[
        (runs["service"] == unit.service.name)
        & (runs["variant"] == unit.variant)
        & (runs["payload"] == plan.seed_payload)
        & (runs["concurrency"] == plan.seed_concurrency)
    ]
    if seed_point.empty:
        return 10.0
    return max(1.0, round(float(seed_point["rps"].median()) / 2))
