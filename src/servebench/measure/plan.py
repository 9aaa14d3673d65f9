"""The measuring plan: which services, payloads and points, in which order, on which CPUs.

Built once from the validated `Study`; every measuring phase reads it.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servebench import paths, registry
from servebench.config import BASE_VARIANT, Study
from servebench.measure import workload
from servebench.registry import Service


@dataclass(frozen=True)
class Pinning:
    """CPU sets (taskset lists, or None when not pinned) and the per-service budget."""

    server_cpus: str | None
    loadgen_cpus: str | None
    threads: int
    workers: int

    @classmethod
    def from_study(cls, study: Study) -> Pinning:
        pinned = bool(study.server_cpu_list)
        return cls(
            server_cpus=study.server_cpus if pinned else None,
            loadgen_cpus=study.loadgen_cpus if pinned else None,
            threads=study.threads,
            workers=study.workers,
        )

    @property
    def server_cores(self) -> int:
        """The server's CPUs (its pinning's, else workers × threads): an in-process loop's
        items/s times these is the ceiling a service is divided by."""
        from servebench.config import cpu_list

        return len(cpu_list(self.server_cpus)) if self.server_cpus else self.workers * self.threads

    def orchestrator_cpus(self) -> list[int] | None:
        """Where the pipeline itself runs during measurements: with the load generator."""
        from servebench.config import cpu_list

        return cpu_list(self.loadgen_cpus) if self.loadgen_cpus else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "server_cpus": self.server_cpus,
            "loadgen_cpus": self.loadgen_cpus,
            "orchestrator_cpus": self.loadgen_cpus,
            "threads": self.threads,
            "workers": self.workers,
            "pinned": self.server_cpus is not None,
        }


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


@dataclass(frozen=True)
class Unit:
    """What is measured as one: a service serving one model variant."""

    service: Service
    variant: str
    model_dir: Path

    @property
    def name(self) -> str:
        return f"{self.service.name}·{self.variant}"

    def key(self) -> dict[str, str]:
        """The columns that identify the unit in every file of the run."""
        return {"service": self.service.name, "variant": self.variant}


@dataclass(frozen=True)
class Plan:
    study: Study
    services: list[Service]
    model_dirs: dict[str, Path]  # variant -> its model directory
    payloads: dict[str, str]
    concurrency_levels: list[int]
    pinning: Pinning
    mixed_texts: list[str]  # the mixed workload's request texts, in order (empty: none)
    # variant -> its answers never depend on batch-mates (`verify.batch_invariance`); a
    # variant missing here is held to the strict check (fail closed)
    batch_invariant: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_study(cls, study: Study) -> Plan:
        names = list(dict.fromkeys([study.payload, *study.payloads]))
        return cls(
            study=study,
            services=registry.select(study.services),
            model_dirs={variant: study.variant_dir(variant) for variant in study.variants},
            payloads=load_payloads(names),
            concurrency_levels=sorted({*study.concurrency_levels, study.concurrency}),
            pinning=Pinning.from_study(study),
            mixed_texts=workload.mixed_requests(study.mixed_requests, study.mixed_seed),
        )

    @property
    def units(self) -> list[Unit]:
        """Every service with every variant, in the configuration's order; an A/A control
        (it measures the noise, not the model), a rung of the ladder and the services of
        `base_variant_only` with fp32 alone."""
        return [
            Unit(service, variant, model_dir)
            for service in self.services
            for variant, model_dir in self.model_dirs.items()
            if variant == BASE_VARIANT or not self.base_variant_only(service)
        ]

    def base_variant_only(self, service: Service) -> bool:
        return service.control or service.rung or service.name in self.study.base_variant_only

    @property
    def seed_payload(self) -> str:
        return self.study.payload

    @property
    def seed_concurrency(self) -> int:
        return self.study.concurrency

    def seed_body(self) -> bytes:
        return request_body(self.payloads[self.seed_payload])

    def start_order(self) -> list[Unit]:
        """The order in which the units are started, verified and warmed up: seeded shuffle."""
        return self._shuffled()

    def soak_order(self) -> list[Unit]:
        """The soak's units, each on a fresh process: the base order reversed, the variants
        in `soak_variants` only, without the units measured at the seed point only and the
        A/A control."""
        return [
            u
            for u in self._shuffled()[::-1]
            if self._beyond_seed_point(u) and u.variant in self.study.soak_variants
        ]

    def openloop_order(self) -> list[Unit]:
        """The open-loop search's units, on their warm processes after the rounds: the base
        order reversed, the variants in `openloop_variants` and the services of
        `openloop_services` (every one measured beyond the seed point when it names none)."""
        named = self.study.openloop_services
        return [
            u
            for u in self._shuffled()[::-1]
            if self._beyond_seed_point(u)
            and u.variant in self.study.openloop_variants
            and (not named or u.service.name in named)
        ]

    def _beyond_seed_point(self, unit: Unit) -> bool:
        return not self.seed_point_only(unit) and not unit.service.control

    def _shuffled(self) -> list[Unit]:
        base = self.units
        random.Random(self.study.shuffle_seed).shuffle(base)
        return base

    @property
    def batched_services(self) -> list[Service]:
        return [service for service in self.services if service.batching]

    def mixed_bodies(self) -> list[bytes]:
        return workload.request_bodies(self.mixed_texts)

    def mixed_points(self) -> list[int]:
        """The mixed workload's concurrency levels (none when it is switched off)."""
        return sorted(self.study.mixed_concurrency_levels) if self.mixed_texts else []

    def seed_point_only(self, unit: Unit) -> bool:
        """A rung of the ladder, or a service of `seed_point_only`."""
        return unit.service.rung or unit.service.name in self.study.seed_point_only

    def points(self, unit: Unit | None = None) -> list[tuple[str, int]]:
        """(payload, concurrency) pairs: the seed's payload at every concurrency level, the
        other payloads at `payload_levels` (a cross through the seed point: the payloads'
        throughput saturates on one server core at low concurrency already); or the seed
        point alone for a unit whose service is in `seed_point_only`."""
        if unit is not None and self.seed_point_only(unit):
            return [(self.seed_payload, self.seed_concurrency)]
        others = sorted(set(self.study.payload_levels))
        return [
            (p, c)
            for p in self.payloads
            for c in (self.concurrency_levels if p == self.seed_payload else others)
        ]

    def all_points(self) -> list[tuple[str, int]]:
        """Every point the interleaved phase measures, the seed point first (the headline),
        then the sweep, then the mixed workload (payload `mixed`)."""
        seed = (self.seed_payload, self.seed_concurrency)
        rest = [p for p in self.points() if p != seed]
        return [seed, *rest, *((paths.MIXED, c) for c in self.mixed_points())]

    def units_at(self, point: tuple[str, int]) -> list[Unit]:
        """The units measured at a point (those measured at the seed point only, only there;
        at the mixed workload's, those of `mixed_services` when it names any)."""
        seed = (self.seed_payload, self.seed_concurrency)
        mixed = self.study.mixed_services if point[0] == paths.MIXED else []
        return [
            u
            for u in self._shuffled()
            if point == seed
            or (not self.seed_point_only(u) and (not mixed or u.service.name in mixed))
        ]

    def is_seed_point(self, point: tuple[str, int]) -> bool:
        return point == (self.seed_payload, self.seed_concurrency)

    def in_seed_table(self, unit: Unit) -> bool:
        """The seed table's full runs are every unit's but a rung's (the ladder explains the
        table; its ratios come from the paired rounds)."""
        return not unit.service.rung

    def seed_table_rounds(self, point: tuple[str, int]) -> int:
        """Rounds of full ``hey -n n_requests`` runs before a point's paired rounds: the seed
        table's (``seed_table_runs``) at the seed point, none elsewhere."""
        return self.study.seed_table_runs if self.is_seed_point(point) else 0

    def precision_target(self, point: tuple[str, int]) -> tuple[float, float]:
        """A point's precision target (± % of every ratio's 95 % interval) and time budget
        (s) for its paired rounds: the seed point's own, and the sweep's for the others."""
        study = self.study
        if self.is_seed_point(point):
            return study.target_ci_pct, study.seed_point_budget_s
        return study.sweep_target_ci_pct, study.point_budget_s

    def hey_requests(self, concurrency: int, seconds_per_request: float) -> int:
        """hey -n of a paired burst: a request count, never a time limit.

        With hey -z, requests still in flight at the deadline are dropped, and a server that
        shares its core among them (thread pool, processor sharing) loses all their partial
        work, so long payloads at high concurrency would look slower than they are. The count
        aims at burst_s of work at the unit's own pace (the interleaved phase passes its last
        burst's at the point, before the first its concurrency-1 latency), with at least
        burst_min_per_client requests per hey worker, rounded up to a multiple of the
        concurrency (hey sends n // c * c). Bursts of about equal length matter: each pays a
        fixed ramp-up and drain (about 4 % of half a second at c=50 on the seed sentence,
        issue 22), and a unit given shorter bursts than its partner would pay a larger share.
        """
        return burst_requests(
            concurrency, seconds_per_request, self.study.burst_s, self.study.burst_min_per_client
        )


def burst_requests(
    concurrency: int, seconds_per_request: float, duration_s: float, min_per_client: int
) -> int:
    by_time = math.ceil(duration_s / seconds_per_request) if seconds_per_request > 0 else 1
    wanted = max(by_time, min_per_client * concurrency, concurrency)
    return math.ceil(wanted / concurrency) * concurrency
