"""The load test: verify, warm up, measure every service, and write tidy data to the run directory.

The notebook `02_load_test.ipynb` calls `run_load_test`; nothing here draws a plot.
See docs/DATA.md for the files written.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from servebench import ceiling, config, hey, paths, registry, resources, serving
from servebench.client import Client, stage_times
from servebench.process import ServiceDiedError, ServiceError, ServiceProcess, confined_to
from servebench.registry import Service

Progress = Callable[[str], None]
PARITY_TOLERANCE = 1e-4


class VerificationError(ServiceError):
    """A service answered differently from ONNX Runtime called directly."""


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Pinning:
    server_cpus: str | None
    loadgen_cpus: str | None
    threads: int
    workers: int

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> Pinning:
        usable = sorted(os.sched_getaffinity(0))
        server = config.cpu_list(parameters.get("server_cpus") or "")
        loadgen = config.cpu_list(parameters.get("loadgen_cpus") or "")
        pinnable = server and loadgen and set(server + loadgen) <= set(usable)
        if pinnable and set(server) & set(loadgen):
            raise config.ConfigError("server_cpus and loadgen_cpus overlap; give them apart")
        return cls(
            server_cpus=str(parameters["server_cpus"]) if pinnable else None,
            loadgen_cpus=str(parameters["loadgen_cpus"]) if pinnable else None,
            threads=int(parameters["threads"]),
            workers=int(parameters["workers"]),
        )

    def orchestrator_cpus(self) -> list[int] | None:
        """Where the pipeline itself runs during measurements: with the load generator."""
        return config.cpu_list(self.loadgen_cpus) if self.loadgen_cpus else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_cpus": self.server_cpus,
            "loadgen_cpus": self.loadgen_cpus,
            "orchestrator_cpus": self.loadgen_cpus,
            "threads": self.threads,
            "workers": self.workers,
            "pinned": self.server_cpus is not None,
        }


# ---------------------------------------------------------------- inputs


def load_payloads(names: Iterable[str], folder: Path = paths.PAYLOADS) -> dict[str, str]:
    texts = {}
    for name in names:
        path = folder / f"{name}.txt"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in folder.glob("*.txt")))
            raise FileNotFoundError(f"payload {name!r} not found at {path}; known: {known}")
        texts[name] = path.read_text().strip()
    return texts


def request_body(text: str) -> bytes:
    return json.dumps({"inputs": text}).encode()


def reference_sentences() -> list[dict[str, str]]:
    """The sentences every service must answer like ONNX Runtime before it is timed."""
    from servebench.models import REFERENCE_SENTENCES

    return [dict(row) for row in REFERENCE_SENTENCES]


def expected_predictions(model_dir: Path, sentences: list[dict[str, str]]) -> dict[str, Any]:
    """Direct ONNX Runtime in this process: the answers every service must give."""
    classifier = serving.inference().Classifier(model_dir, threads=1)
    return {row["id"]: classifier.classify(row["text"]) for row in sentences}


# ---------------------------------------------------------------- checks


def verify(
    proc: ServiceProcess, sentences: list[dict[str, str]], expected: dict[str, Any]
) -> list[dict[str, Any]]:
    """Parity rows for one service; raises VerificationError on any mismatch."""
    rows = []
    with Client(proc.host, proc.port) as client:
        for row in sentences:
            answer = client.classify(row["text"])
            want = expected[row["id"]]
            ok_status = answer.status == 200 and isinstance(answer.body, dict)
            label = answer.body.get("label") if ok_status else None
            score = float(answer.body.get("score", float("nan"))) if ok_status else float("nan")
            diff = abs(score - want.score)
            rows.append(
                {
                    "service": proc.service.name,
                    "sentence_id": row["id"],
                    "kind": row["kind"],
                    "label": label,
                    "score": score,
                    "expected_label": want.label,
                    "expected_score": want.score,
                    "abs_diff": diff,
                    "ok": bool(label == want.label and diff <= PARITY_TOLERANCE),
                }
            )
    bad = [r for r in rows if not r["ok"]]
    if bad:
        first = bad[0]
        raise VerificationError(
            f"{proc.service.name} disagrees with ONNX Runtime on {len(bad)} reference "
            f"sentence(s), e.g. {first['sentence_id']}: {first['label']} {first['score']:.6f} "
            f"vs {first['expected_label']} {first['expected_score']:.6f}"
        )
    return rows


def first_correct_answer(proc: ServiceProcess, text: str, want: Any) -> float:
    """Seconds from spawn to the first correct classification (the cold start)."""
    with Client(proc.host, proc.port) as client:
        answer = client.classify(text)
    if answer.status != 200 or answer.body.get("label") != want.label:
        raise VerificationError(
            f"{proc.service.name} first answer was {answer.status} {answer.body}"
        )
    return time.perf_counter() - proc.spawned_at


def measure_stages(proc: ServiceProcess, text: str, requests: int) -> list[dict[str, Any]]:
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


# ---------------------------------------------------------------- output


class RunWriter:
    """Appends tidy rows to the run directory as they are measured, so partial runs keep data."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        (run_dir / "raw").mkdir(parents=True, exist_ok=True)
        (run_dir / "hey").mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)

    def append(self, name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def hey_run(self, key: dict[str, Any], run: hey.HeyRun) -> None:
        stem = f"{key['service']}__{key['payload']}__c{key['concurrency']}__r{key['repeat']}"
        records = run.records.copy()
        for column, value in reversed(list(key.items())):
            records.insert(0, column, value)
        records.to_csv(self.run_dir / "raw" / f"{stem}.csv", index=False)
        (self.run_dir / "hey" / f"{stem}.txt").write_text(hey.render_summary(run))

    def combine_requests(self) -> Path:
        parts = sorted((self.run_dir / "raw").glob("*.csv"))
        if not parts:
            raise RuntimeError(f"no hey records under {self.run_dir / 'raw'}")
        target = self.run_dir / "requests.csv.gz"
        pd.concat([pd.read_csv(p) for p in parts], ignore_index=True).to_csv(
            target, index=False, compression="gzip"
        )
        return target


# ---------------------------------------------------------------- the run


@dataclass
class Plan:
    services: list[Service]
    model_dir: Path
    payloads: dict[str, str]
    seed_payload: str
    seed_concurrency: int
    n_requests: int
    concurrency_levels: list[int]
    sweep_duration_s: float
    sweep_min_rounds: int
    repeats: int
    warmup_requests: int
    stage_requests: int
    pinning: Pinning
    ready_timeout_s: float
    shuffle_seed: int

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any], model_dir: Path) -> Plan:
        config.validate(parameters)
        names = list(dict.fromkeys([parameters["payload"], *parameters["payloads"]]))
        levels = sorted(
            {*map(int, parameters["concurrency_levels"]), int(parameters["concurrency"])}
        )
        return cls(
            services=registry.select(parameters["services"]),
            model_dir=model_dir,
            payloads=load_payloads(names),
            seed_payload=str(parameters["payload"]),
            seed_concurrency=int(parameters["concurrency"]),
            n_requests=int(parameters["n_requests"]),
            concurrency_levels=levels,
            sweep_duration_s=float(parameters["sweep_duration_s"]),
            sweep_min_rounds=int(parameters["sweep_min_rounds"]),
            repeats=int(parameters["repeats"]),
            warmup_requests=int(parameters["warmup_requests"]),
            stage_requests=int(parameters["stage_requests"]),
            pinning=Pinning.from_parameters(parameters),
            ready_timeout_s=float(parameters["ready_timeout_s"]),
            shuffle_seed=int(parameters["shuffle_seed"]),
        )

    def orders(self) -> list[list[Service]]:
        """The service order of each repeat: one seeded shuffle, rotated from repeat to repeat.

        Independent shuffles can put a service in the same slot every time (this project's
        seed once put `python` last in all three repeats), and on a machine whose speed drifts
        over a run that slot is a bias. Rotating spreads every service over the positions
        (all of them once repeats >= services) while the shuffle keeps the base order unplanned.
        """
        base = self._shuffled()
        shifts = [(repeat * len(base)) // self.repeats for repeat in range(self.repeats)]
        return [base[shift:] + base[:shift] for shift in shifts]

    def extended_order(self) -> list[Service]:
        """The soak and open-loop phase's order: the base order reversed."""
        return self._shuffled()[::-1]

    def _shuffled(self) -> list[Service]:
        base = list(self.services)
        random.Random(self.shuffle_seed).shuffle(base)
        return base

    def points(self) -> list[tuple[str, int]]:
        """(payload, concurrency) pairs: every payload at every level."""
        return [(p, c) for p in self.payloads for c in self.concurrency_levels]

    def hey_requests(self, payload: str, concurrency: int, latency_c1_s: float) -> int:
        """hey -n for every point: the seed's n at the seed payload, else sized to the service.

        A point is a request count, never a time limit: with hey -z, requests still in flight
        at the deadline are dropped, and a server that shares its core among them (thread pool,
        processor sharing) loses all their partial work, so long payloads at high concurrency
        would look slower than they are. The count aims at sweep_duration_s of work at the
        service's own concurrency-1 latency, with at least sweep_min_rounds requests per hey
        worker, rounded up to a multiple of the concurrency (hey sends n // c * c).
        """
        if payload == self.seed_payload:
            return self.n_requests
        return sweep_requests(
            concurrency, latency_c1_s, self.sweep_duration_s, self.sweep_min_rounds
        )


def sweep_requests(
    concurrency: int, latency_c1_s: float, duration_s: float, min_rounds: int
) -> int:
    by_time = math.ceil(duration_s / latency_c1_s) if latency_c1_s > 0 else 1
    wanted = max(by_time, min_rounds * concurrency, concurrency)
    return math.ceil(wanted / concurrency) * concurrency


def start_service(plan: Plan, service: Service, log_dir: Path) -> ServiceProcess:
    proc = ServiceProcess(
        service,
        plan.model_dir,
        log_dir / f"{service.name}.log",
        threads=plan.pinning.threads,
        workers=plan.pinning.workers,
        cpus=plan.pinning.server_cpus,
        ready_timeout_s=plan.ready_timeout_s,
    )
    return proc


def warm_up(plan: Plan, proc: ServiceProcess) -> None:
    for payload, text in plan.payloads.items():
        count = plan.warmup_requests if payload == plan.seed_payload else 10
        concurrency = min(plan.seed_concurrency, count)
        hey.run_hey(
            proc.url + "/age",
            request_body(text),
            concurrency=concurrency,
            requests=count,
            cpus=plan.pinning.loadgen_cpus,
        )
    proc.check_alive()


def measure_point(
    plan: Plan,
    proc: ServiceProcess,
    payload: str,
    concurrency: int,
    repeat: int,
    latency_c1_s: float,
) -> tuple[dict[str, Any], hey.HeyRun]:
    with resources.ResourceSampler(proc.pid) as sampler:
        run = hey.run_hey(
            proc.url + "/age",
            request_body(plan.payloads[payload]),
            concurrency=concurrency,
            cpus=plan.pinning.loadgen_cpus,
            requests=plan.hey_requests(payload, concurrency, latency_c1_s),
        )
    proc.check_alive()
    answered = max(run.answered, 1)
    row = {
        "service": proc.service.name,
        "payload": payload,
        "concurrency": concurrency,
        "repeat": repeat,
        "n": run.requested,
        "errors": run.errors,
        "total_s": run.total_s,
        "rps": run.answered / run.total_s if run.total_s > 0 else 0.0,
        "cpu_s": sampler.cpu_seconds,
        "cpu_s_per_req": sampler.cpu_seconds / answered,
        "peak_rss_mb": sampler.peak_rss_mb,
        "rss_after_mb": sampler.rss_end_mb,
    }
    return row, run


def run_service_repeat(
    plan: Plan,
    service: Service,
    repeat: int,
    order: int,
    writer: RunWriter,
    sentences: list[dict[str, str]],
    expected: dict[str, Any],
) -> None:
    proc = start_service(plan, service, writer.run_dir / "logs")
    with proc:
        cold_start = first_correct_answer(proc, sentences[0]["text"], expected[sentences[0]["id"]])
        parity = verify(proc, sentences, expected)
        if repeat == 0:
            writer.append("parity.csv", parity)
        writer.append(
            "coldstarts.csv",
            [{"service": service.name, "repeat": repeat, "cold_start_s": cold_start}],
        )
        warm_up(plan, proc)
        latency_c1_s: dict[str, float] = {}
        for payload in plan.payloads:
            stages = measure_stages(proc, plan.payloads[payload], plan.stage_requests)
            latency_c1_s[payload] = median_client_s(stages)
            writer.append(
                "stages.csv",
                [
                    {"service": service.name, "payload": payload, "repeat": repeat, **s}
                    for s in stages
                ],
            )
        for payload, concurrency in plan.points():
            started = metadata_now()
            row, run = measure_point(
                plan, proc, payload, concurrency, repeat, latency_c1_s[payload]
            )
            writer.hey_run(
                {
                    "service": service.name,
                    "payload": payload,
                    "concurrency": concurrency,
                    "repeat": repeat,
                },
                run,
            )
            writer.append("loadtests.csv", [{**row, "order": order, "started": started}])
            say(
                f"  {service.name:<20} {payload:<7} c={concurrency:<3} "
                f"{row['rps']:8.1f} req/s  errors={row['errors']}"
            )


def metadata_now() -> str:
    from servebench.metadata import now_iso

    return now_iso()


def service_rows(plan: Plan, run_dir: Path) -> list[dict[str, Any]]:
    coldstarts = pd.read_csv(run_dir / "coldstarts.csv")
    rows = []
    for service in plan.services:
        binary = service.binary_path()
        rows.append(
            {
                "service": service.name,
                "label": service.label,
                "language": service.language,
                "build": service.profile,
                "cold_start_s": float(
                    coldstarts.loc[coldstarts["service"] == service.name, "cold_start_s"].median()
                ),
                "size_mb": service_size_mb(service),
                "binary": str(binary.relative_to(paths.ROOT)) if binary else "",
            }
        )
    return rows


def service_size_mb(service: Service) -> float:
    """Size on disk of what a service needs besides the model: binary, code, packages."""
    values = registry.placeholders(
        binary=service.binary_path() or "",
        ort_lib=registry.onnxruntime_library(),
    )
    targets = [paths.ROOT / registry.render(p, values) for p in service.size_paths]
    site = registry.site_packages()
    targets += [site / package for package in service.size_packages]
    return resources.dir_size_mb([t for t in targets if t.exists()])


def run_ceiling(plan: Plan, parameters: dict[str, Any], run_dir: Path, repeat: int) -> pd.DataFrame:
    """One repeat's share of the in-process iterations, appended to ceiling.csv.

    Measured at the start of every repeat, so the ceiling samples the same stretch of a
    shared machine's time as the services it is compared with, not only the run's start.
    """
    impls = ["python"]
    if ceiling.RUST_BENCH_BINARY.is_file():
        impls.append("rust")
    payload_files = {name: paths.PAYLOADS / f"{name}.txt" for name in plan.payloads}
    frame = ceiling.measure(
        plan.model_dir,
        payload_files,
        impls=impls,
        iterations=math.ceil(int(parameters["ceiling_iterations"]) / plan.repeats),
        warmup=int(parameters["ceiling_warmup"]),
        threads=plan.pinning.threads,
        cpus=plan.pinning.server_cpus,
    )
    frame.insert(0, "repeat", repeat)
    target = run_dir / "ceiling.csv"
    frame.to_csv(target, mode="a", header=not target.exists(), index=False)
    return frame


def run_extended_phase(
    plan: Plan, parameters: dict[str, Any], service: Service, writer: RunWriter
) -> None:
    """Soak (RSS growth, errors) then the open-loop search, on a fresh warmed-up process."""
    soak_s = float(parameters.get("soak_s") or 0)
    do_openloop = bool(parameters.get("openloop"))
    if soak_s <= 0 and not do_openloop:
        return
    proc = start_service(plan, service, writer.run_dir / "logs")
    body = request_body(plan.payloads[plan.seed_payload])
    with proc:
        warm_up(plan, proc)
        if soak_s > 0:
            rss_warm = resources.rss_bytes(resources.process_tree(proc.pid)) / 2**20
            concurrency = int(parameters["soak_concurrency"])
            with resources.ResourceSampler(proc.pid) as sampler:
                run = hey.run_hey(
                    proc.url + "/age",
                    body,
                    concurrency=concurrency,
                    duration_s=soak_s,
                    cpus=plan.pinning.loadgen_cpus,
                )
            proc.check_alive()
            rss_end = sampler.rss_end_mb
            writer.append(
                "soak.csv",
                [
                    {
                        "service": service.name,
                        "duration_s": soak_s,
                        "concurrency": concurrency,
                        "requests": run.answered,
                        "non_2xx": run.errors,
                        "rss_warm_mb": rss_warm,
                        "rss_end_mb": rss_end,
                        "rss_growth": rss_end / rss_warm if rss_warm else float("nan"),
                    }
                ],
            )
            say(
                f"  {service.name:<20} soak {soak_s:.0f}s: {run.answered} requests, "
                f"{run.errors} errors, RSS {rss_warm:.0f} -> {rss_end:.0f} MB"
            )
        if do_openloop:
            from servebench import openloop

            bound_s = float(parameters["openloop_bound_ms"]) / 1000
            best, attacks = openloop.find_max_rate(
                proc.url + "/age",
                body,
                bound_s=bound_s,
                start_rate=openloop_start_rate(plan, service, writer.run_dir),
                duration_s=float(parameters["openloop_duration_s"]),
                max_steps=int(parameters["openloop_max_steps"]),
                cpus=plan.pinning.loadgen_cpus,
            )
            proc.check_alive()
            writer.append(
                "openloop.csv",
                openloop.openloop_rows(service.name, plan.seed_payload, attacks, bound_s),
            )
            bound_ms = bound_s * 1000
            say(f"  {service.name:<20} open loop: {best:.1f} req/s with p99 <= {bound_ms:.0f} ms")


def openloop_start_rate(plan: Plan, service: Service, run_dir: Path) -> float:
    """Half the closed-loop throughput at the seed point: the search then needs few steps."""
    path = run_dir / "loadtests.csv"
    if not path.exists():
        return 10.0
    runs = pd.read_csv(path)
    seed_point = runs[
        (runs["service"] == service.name)
        & (runs["payload"] == plan.seed_payload)
        & (runs["concurrency"] == plan.seed_concurrency)
    ]
    if seed_point.empty:
        return 10.0
    return max(1.0, round(float(seed_point["rps"].median()) / 2))


def model_record(parameters: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """Which model was served: id, directory, and what the export wrote about it."""
    record: dict[str, Any] = {"id": parameters.get("model_id"), "dir": str(model_dir)}
    for name in ("export.json", "parity.json"):
        path = model_dir / name
        if path.is_file():
            document = json.loads(path.read_text())
            if name == "parity.json" and isinstance(document, dict):
                document = {k: v for k, v in document.items() if not isinstance(v, list)}
            record[name.removesuffix(".json")] = document
    return record


def build_services(services: list[Service], *, need_ceiling_binary: bool) -> dict[str, float]:
    """Build what the run needs (cargo caches it in service/rust/target/)."""
    seconds = {}
    wanted = list(services)
    if need_ceiling_binary:
        native = registry.load_registry().get("rust-native-release")
        if native is not None and native not in wanted:
            wanted.append(native)
    for service in wanted:
        seconds[service.name] = registry.build(service, log=sys.stderr)
    return seconds


def run_load_test(
    parameters: dict[str, Any], run_dir: Path, model_dir: Path, progress: Progress = say
) -> Path:
    """Everything the load-test notebook does, in order; returns the run directory."""
    from servebench import metadata

    plan = Plan.from_parameters(parameters, model_dir)
    writer = RunWriter(run_dir)
    metadata.update(
        run_dir,
        pinning=plan.pinning.as_dict(),
        model=model_record(parameters, model_dir),
        **metadata.collect(parameters),
    )

    progress(f"building {len(plan.services)} service(s)")
    metadata.update(run_dir, build_s=build_services(plan.services, need_ceiling_binary=True))

    sentences = reference_sentences()
    expected = expected_predictions(model_dir, sentences)
    with confined_to(plan.pinning.orchestrator_cpus()):
        for repeat, order in enumerate(plan.orders()):
            progress(f"repeat {repeat + 1}/{plan.repeats}: in-process ceiling (no HTTP)")
            run_ceiling(plan, parameters, run_dir, repeat)
            progress(f"repeat {repeat + 1}/{plan.repeats}: {' -> '.join(s.name for s in order)}")
            for position, service in enumerate(order):
                run_service_repeat(plan, service, repeat, position, writer, sentences, expected)

        extended = plan.extended_order()
        progress(f"soak and open-loop search: {' -> '.join(s.name for s in extended)}")
        for service in extended:
            run_extended_phase(plan, parameters, service, writer)

    pd.DataFrame(service_rows(plan, run_dir)).to_csv(run_dir / "services.csv", index=False)
    writer.combine_requests()
    progress(f"load test written to {run_dir}")
    return run_dir


__all__ = [
    "Pinning",
    "Plan",
    "ServiceDiedError",
    "VerificationError",
    "build_services",
    "run_load_test",
]
