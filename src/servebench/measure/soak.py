"""Soak: sustained closed-loop load on a warm process — errors and resident-memory growth."""

from __future__ import annotations

from servebench.measure import hey, resources
from servebench.measure.plan import Plan, Unit
from servebench.process import ServiceProcess
from servebench.rundir.writer import RunWriter
from servebench.say import say, unit_column


def soak(plan: Plan, unit: Unit, proc: ServiceProcess, writer: RunWriter) -> None:
    """`soak_s` seconds of hey at `soak_concurrency` on the seed payload; one row of soak.csv."""
    study = plan.study
    rss_warm = resources.rss_bytes(resources.process_tree(proc.pid)) / 2**20
    with resources.ResourceSampler(proc.pid) as sampler:
        run = hey.run_hey(
            proc.url + "/age",
            plan.seed_body(),
            concurrency=study.soak_concurrency,
            duration_s=study.soak_s,
            cpus=plan.pinning.loadgen_cpus,
        )
    proc.check_alive()
    rss_end = sampler.rss_end_mb
    writer.append(
        "soak.csv",
        [
            {
                **unit.key(),
                "duration_s": study.soak_s,
                "concurrency": study.soak_concurrency,
                "requests": run.answered,
                "non_2xx": run.errors,
                "rss_warm_mb": rss_warm,
                "rss_end_mb": rss_end,
                "rss_growth": rss_end / rss_warm if rss_warm else float("nan"),
            }
        ],
    )
    say(
        f"  {unit_column(unit.name)}soak {study.soak_s:.0f}s: {run.answered} requests, "
        f"{run.errors} errors, RSS {rss_warm:.0f} -> {rss_end:.0f} MB"
    )
