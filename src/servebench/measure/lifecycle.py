"""One unit's life cycle: start, verify, warm up, stage timings, then bursts (the
interleaved phase's, measure/interleave.py) or a fresh process's soak.

Every burst is one `hey` run (or one closed-loop vegeta run of the mixed workload) while
/proc samples the server's CPU time and memory; rows go to the run directory as soon as they
are measured. The order of bursts is measure/interleave.py's.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from servebench.client import Client, stage_times
from servebench.loadrun import ClosedLoopRun
from servebench.measure import hey, resources, run_counts
from servebench.measure.plan import Plan, Unit, request_body
from servebench.measure.vegeta_closed import run_closed_loop
from servebench.measure.verify import first_correct_answer, verify
from servebench.process import ServiceError, ServiceProcess
from servebench.rundir.writer import RunWriter
from servebench.say import say, unit_column


def start_service(plan: Plan, unit: Unit, writer: RunWriter) -> ServiceProcess:
    """A service process serving the unit's variant on the plan's budget (started by its
    context manager); every start appends to the unit's log."""
    return ServiceProcess(
        unit.service,
        unit.model_dir,
        writer.log_dir / f"{unit.service.name}__{unit.variant}.log",
        threads=plan.pinning.threads,
        workers=plan.pinning.workers,
        cpus=plan.pinning.server_cpus,
        ready_timeout_s=plan.study.ready_timeout_s,
        extra_env=plan.study.batching_env(),
    )


def warm_up(plan: Plan, proc: ServiceProcess) -> None:
    """Discarded requests on every payload (the seed's the most), so caches and pools are hot."""
    for payload, text in plan.payloads.items():
        count = plan.study.warmup_requests if payload == plan.seed_payload else 10
        count = max(count, 1)
        hey.run_hey(
            proc.url + "/age",
            request_body(text),
            concurrency=min(plan.seed_concurrency, count),
            requests=count,
            cpus=plan.pinning.loadgen_cpus,
        )
    if plan.mixed_texts:
        bodies = plan.mixed_bodies()[: max(plan.study.warmup_requests, 1)]
        run_closed_loop(
            proc.url + "/age", bodies, plan.seed_concurrency, cpus=plan.pinning.loadgen_cpus
        )
    proc.check_alive()


#: The stage timings of one payload stop after this much time once they have at least
#: STAGE_MIN_REQUESTS: 100 requests of a 512-token text would take 11 s per unit, and the
#: median of each stage is stable long before.
STAGE_BUDGET_S = 2.0
STAGE_MIN_REQUESTS = 20


def measure_stages(proc: ServiceProcess, text: str, requests: int) -> list[dict[str, Any]]:
    """Sequential requests (concurrency 1) reading the service's x-*-time headers: up to
    `requests`, fewer for a slow payload (:data:`STAGE_BUDGET_S`)."""
    rows = []
    started = time.monotonic()
    with Client(proc.host, proc.port) as client:
        for number in range(requests):
            late = time.monotonic() - started > STAGE_BUDGET_S
            if late and number >= STAGE_MIN_REQUESTS:
                break
            answer = client.classify(text)
            if answer.status != 200:
                raise ServiceError(f"{proc.service.name} answered {answer.status} {answer.body}")
            rows.append({"client_us": answer.elapsed_us, **stage_times(answer)})
    return rows


def median_client_s(stages: list[dict[str, Any]]) -> float:
    times = [float(s["client_us"]) for s in stages]
    return statistics.median(times) / 1e6 if times else 0.0


def measure_point(
    plan: Plan,
    proc: ServiceProcess,
    payload: str,
    concurrency: int,
    seconds_per_request: float,
    requests: int | None = None,
) -> tuple[dict[str, Any], ClosedLoopRun]:
    """One hey run at (payload, concurrency) with the server's resources sampled meanwhile:
    `requests` of them, or a short burst at the unit's pace (:meth:`Plan.hey_requests`)."""
    if requests is None:
        requests = plan.hey_requests(concurrency, seconds_per_request)
    before = run_counts.read(proc)
    with resources.ResourceSampler(proc.pid) as sampler:
        run = hey.run_hey(
            proc.url + "/age",
            request_body(plan.payloads[payload]),
            concurrency=concurrency,
            cpus=plan.pinning.loadgen_cpus,
            requests=requests,
        )
    proc.check_alive()
    counted = run_counts.burst_columns(before, run_counts.read(proc))
    return point_row(run, sampler, counted), run


def measure_mixed_point(
    plan: Plan, proc: ServiceProcess, concurrency: int, expected_labels: list[str]
) -> tuple[dict[str, Any], ClosedLoopRun]:
    """A burst of the mixed workload at one concurrency (vegeta, closed loop), resources
    sampled: the whole sequence, the same in every round and for every unit, so that paired
    bursts do the same work (slices of it would differ in their few long texts, and a ratio
    would move with the slice). Each answer's label is compared with ONNX Runtime's for its
    own text (`correct`)."""
    before = run_counts.read(proc)
    with resources.ResourceSampler(proc.pid) as sampler:
        url, cpus = proc.url + "/age", plan.pinning.loadgen_cpus
        run = run_closed_loop(url, plan.mixed_bodies(), concurrency, cpus=cpus)
    proc.check_alive()
    counted = run_counts.burst_columns(before, run_counts.read(proc))
    records = run.records
    if expected_labels:
        want = records["seq"].map(dict(enumerate(expected_labels)))
        records["correct"] = (records["label"] == want).where(records["status_code"] == 200)
    return point_row(run, sampler, counted), run


def point_row(
    run: ClosedLoopRun,
    sampler: resources.ResourceSampler,
    counted: dict[str, int | None],
) -> dict[str, Any]:
    """A loadtests.csv row's measurements (the same columns for hey and vegeta runs, and for
    every service: `counted` is :func:`run_counts.burst_columns`, empty unless batched)."""
    total_s, answered = run.total_s, run.answered
    return {
        "n": run.requested,
        "errors": run.errors,
        "total_s": total_s,
        "rps": answered / total_s if total_s > 0 else 0.0,
        "cpu_s": sampler.cpu_seconds,
        "cpu_s_per_req": sampler.cpu_seconds / max(answered, 1),
        "peak_rss_mb": sampler.peak_rss_mb,
        "rss_after_mb": sampler.rss_end_mb,
        # Did the load generator keep up? Its CPU time over its process's wall time is the
        # share of its (pinned) CPU it used: near 1, it, not the server, may set the pace.
        "loadgen_cpu_s": run.loadgen_cpu_s,
        "loadgen_wall_s": run.wall_s,
        **counted,
    }


def prepare(
    plan: Plan,
    unit: Unit,
    proc: ServiceProcess,
    writer: RunWriter,
    sentences: list[dict[str, str]],
    expected: dict[str, Any],
    start: int = 0,
) -> dict[str, float]:
    """A just-started process of the unit: cold start, verification, warm-up and the c=1
    stage timings of every payload it is measured with; returns their median latencies (s).

    `expected` are ONNX Runtime's own answers on the unit's variant (its model.onnx); `start`
    numbers the unit's starts (coldstarts.csv `start`): 0 for the interleaved phase, 1 for
    the fresh process of its soak."""
    first = sentences[0]
    cold_start = first_correct_answer(proc, first["text"], expected[first["id"]])
    checked = verify(
        proc,
        sentences,
        expected,
        batch_invariant=plan.batch_invariant.get(unit.variant, True),
        concurrent=unit.service.batching,
    )
    if start == 0:
        writer.append("parity.csv", [{**unit.key(), **row} for row in checked])
    writer.append("coldstarts.csv", [{**unit.key(), "start": start, "cold_start_s": cold_start}])
    warm_up(plan, proc)
    latency_c1_s: dict[str, float] = {}
    if start == 0:
        for payload in dict.fromkeys(p for p, _ in plan.points(unit)):
            stages = measure_stages(proc, plan.payloads[payload], plan.study.stage_requests)
            latency_c1_s[payload] = median_client_s(stages)
            key = {**unit.key(), "payload": payload}
            writer.append("stages.csv", [{**key, **s} for s in stages])
    return latency_c1_s


def report_point(unit: Unit, payload: str, concurrency: int, row: dict[str, Any]) -> None:
    say(
        f"  {unit_column(unit.name)}{payload:<7} c={concurrency:<3} "
        f"{row['rps']:8.1f} req/s  errors={row['errors']}"
    )
