"""The open-loop phase: for each p99 bound, the highest fixed arrival rate that meets it.

The search (vegeta attacks, growth then bisection, one series for every bound) is
`measure.vegeta.find_rates`; this phase runs it on a unit's warm process after the paired
rounds, starts it from the unit's closed-loop throughput and records every attack.
"""

from __future__ import annotations

import pandas as pd

from servebench.measure import vegeta
from servebench.measure.plan import Plan, Unit
from servebench.process import ServiceProcess
from servebench.rundir.writer import RunWriter
from servebench.say import say, unit_column

#: The first attack at this share of the unit's closed-loop req/s at the seed point, then up
#: by GROWTH until a bound is missed: the limits under 50-250 ms sat at 0.84-1.27 of it in
#: run 20261207-150023 (a 2-core AMD EPYC, AVX2), so the first attack meets every bound and
#: the next two or three bracket them.
START_SHARE = 0.7
GROWTH = 1.25
#: vegeta has waited for every answer when an attack returns: the pause only lets the
#: loopback sockets settle.
PAUSE_S = 0.5


def openloop_search(plan: Plan, unit: Unit, proc: ServiceProcess, writer: RunWriter) -> None:
    """Search the rates on the seed payload; every attack to openloop.csv."""
    study = plan.study
    brackets, attacks = vegeta.find_rates(
        proc.url + "/age",
        plan.seed_body(),
        bounds_s=[ms / 1000 for ms in study.openloop_bound_ms],
        start_rate=start_rate(plan, unit, writer),
        duration_s=study.openloop_duration_s,
        max_steps=study.openloop_max_steps,
        cpus=plan.pinning.loadgen_cpus,
        growth=GROWTH,
        pause_s=PAUSE_S,
    )
    proc.check_alive()
    rows = vegeta.openloop_rows(unit.service.name, plan.seed_payload, attacks)
    writer.append("openloop.csv", [{**unit.key(), "attack": i, **r} for i, r in enumerate(rows)])
    found = ", ".join(
        f"{b.met:.0f} req/s at p99 <= {b.bound_s * 1e3:g} ms" for b in brackets.values()
    )
    say(f"  {unit_column(unit.name)}open loop ({len(attacks)} attacks): {found}")


def start_rate(plan: Plan, unit: Unit, writer: RunWriter) -> float:
    """START_SHARE of the unit's closed-loop throughput at the seed point (10 without one)."""
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
    return max(1.0, round(float(seed_point["rps"].median()) * START_SHARE))
