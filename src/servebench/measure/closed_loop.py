"""The closed-loop phase: one service, one repeat — verify, warm up, stage timings, hey points.

Every (payload, concurrency) point is one `hey` run while /proc samples the server's CPU time
and memory; rows go to the run directory as soon as they are measured.
"""

from __future__ import annotations

import statistics
from typing import Any

from servebench.client import Client, stage_times
from servebench.measure import hey, resources
from servebench.measure.plan import Plan, Unit, request_body
from servebench.measure.vegeta_closed import ClosedLoopRun, run_closed_loop
from servebench.measure.verify import first_correct_answer, verify
from servebench.measure.workload import MIXED
from servebench.metadata import now_iso
from servebench.process import ServiceError, ServiceProcess
from servebench.rundir.writer import RunWriter
from servebench.say import say


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


def measure_stages(proc: ServiceProcess, text: str, requests: int) -> list[dict[str, Any]]:
    """Sequential requests (concurrency 1) reading the service's x-*-time headers."""
    rows = []
    with Client(proc.host, proc.port) as client:
        for _ in range(requests):
            answer = client.classify(text)
            if answer.status != 200:
                raise ServiceError(f"{proc.service.name} answered {answer.status} {answer.body}")
            rows.append({"client_us": answer.elapsed_us, **stage_times(answer)})
    return rows


def median_client_s(stages: list[dict[str, Any]]) -> float:
    times = [float(s["client_us"]) for s in stages]
    return statistics.median(times) / 1e6 if times else 0.0


def measure_point(
    plan: Plan, proc: ServiceProcess, payload: str, concurrency: int, latency_c1_s: float
) -> tuple[dict[str, Any], hey.HeyRun]:
    """One hey run at (payload, concurrency) with the server's resources sampled meanwhile."""
    with resources.ResourceSampler(proc.pid) as sampler:
        run = hey.run_hey(
            proc.url + "/age",
            request_body(plan.payloads[payload]),
            concurrency=concurrency,
            cpus=plan.pinning.loadgen_cpus,
            requests=plan.hey_requests(payload, concurrency, latency_c1_s),
        )
    proc.check_alive()
    return point_row(run.requested, run.errors, run.total_s, run.answered, sampler), run


def measure_mixed_point(
    plan: Plan, proc: ServiceProcess, concurrency: int, expected_labels: list[str]
) -> tuple[dict[str, Any], ClosedLoopRun]:
    """The mixed workload at one concurrency (vegeta, closed loop), resources sampled; each
    answer's label is compared with ONNX Runtime's for its own text (`correct`)."""
    with resources.ResourceSampler(proc.pid) as sampler:
        run = run_closed_loop(
            proc.url + "/age",
            plan.mixed_bodies(),
            concurrency,
            cpus=plan.pinning.loadgen_cpus,
        )
    proc.check_alive()
    records = run.records
    if expected_labels:
        want = records["seq"].map(dict(enumerate(expected_labels)))
        records["correct"] = (records["label"] == want).where(records["status_code"] == 200)
    return point_row(run.requested, run.errors, run.total_s, run.answered, sampler), run


def point_row(
    requested: int, errors: int, total_s: float, answered: int, sampler: resources.ResourceSampler
) -> dict[str, Any]:
    """A loadtests.csv row's measurements (the same columns for hey and vegeta runs)."""
    return {
        "n": requested,
        "errors": errors,
        "total_s": total_s,
        "rps": answered / total_s if total_s > 0 else 0.0,
        "cpu_s": sampler.cpu_seconds,
        "cpu_s_per_req": sampler.cpu_seconds / max(answered, 1),
        "peak_rss_mb": sampler.peak_rss_mb,
        "rss_after_mb": sampler.rss_end_mb,
    }


def run_unit_repeat(
    plan: Plan,
    unit: Unit,
    repeat: int,
    order: int,
    writer: RunWriter,
    sentences: list[dict[str, str]],
    expected: dict[str, Any],
    mixed_labels: list[str] | None = None,
) -> None:
    """A fresh process of the unit: cold start, verification, warm-up, every point.

    `expected` are ONNX Runtime's own answers on the unit's variant (its model.onnx);
    `mixed_labels` its labels for the mixed workload's texts, in order."""
    with start_service(plan, unit, writer) as proc:
        first = sentences[0]
        cold_start = first_correct_answer(proc, first["text"], expected[first["id"]])
        checked = verify(
            proc, sentences, expected, variant=unit.variant, concurrent=unit.service.batching
        )
        parity = [{**unit.key(), **row} for row in checked]
        if repeat == 0:
            writer.append("parity.csv", parity)
        writer.append(
            "coldstarts.csv", [{**unit.key(), "repeat": repeat, "cold_start_s": cold_start}]
        )
        warm_up(plan, proc)
        latency_c1_s: dict[str, float] = {}
        for payload in dict.fromkeys(p for p, _ in plan.points(unit)):
            text = plan.payloads[payload]
            stages = measure_stages(proc, text, plan.study.stage_requests)
            latency_c1_s[payload] = median_client_s(stages)
            key = {**unit.key(), "payload": payload, "repeat": repeat}
            writer.append("stages.csv", [{**key, **s} for s in stages])
        for payload, concurrency in plan.points(unit):
            started = now_iso()
            row, run = measure_point(plan, proc, payload, concurrency, latency_c1_s[payload])
            key = {**unit.key(), "payload": payload, "concurrency": concurrency, "repeat": repeat}
            writer.hey_run(key, run)
            writer.append("loadtests.csv", [{**key, **row, "order": order, "started": started}])
            report_point(unit, payload, concurrency, row)
        for concurrency in plan.unit_mixed_points(unit):
            started = now_iso()
            row, mixed = measure_mixed_point(plan, proc, concurrency, mixed_labels or [])
            key = {**unit.key(), "payload": MIXED, "concurrency": concurrency, "repeat": repeat}
            writer.records(key, mixed.records)
            writer.append("loadtests.csv", [{**key, **row, "order": order, "started": started}])
            report_point(unit, MIXED, concurrency, row)


def report_point(unit: Unit, payload: str, concurrency: int, row: dict[str, Any]) -> None:
    say(
        f"  {unit.name:<26} {payload:<7} c={concurrency:<3} "
        f"{row['rps']:8.1f} req/s  errors={row['errors']}"
    )
