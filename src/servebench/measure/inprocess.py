"""The in-process limits as units of the rounds: each loop, batch path and replay a resident
tool.

Every inference kind's in-process loop (the registry entry's ``ceiling`` command), every
batched service's batch path (its ``batch_ceiling``) and its replay (``replay``) runs as a
resident tool
(measure/resident.py) pinned to the server CPUs, started once per model variant (and, for a
loop, per payload) with ``--serve``. In the rounds they take turns with the services
(measure/interleave.py): one burst of timed calls per round, about half a service's burst
(``burst_s``; in-process timings are steadier, and the batch paths are many), so that a
service and the limit it is divided by sample the same seconds of the machine
(analysis/inprocess.py states the ratios). The units of one tool kind and owner take their
turn together (:attr:`InProcessUnit.group`: a loop's variants, a batch path's variants and
sizes, back to back), so int8 ÷ fp32 in process and batch b ÷ batch 1 compare bursts a
fraction of a second apart rather than anywhere in a round of forty bursts. A unit's first
burst of the run is preceded by an untimed one: minutes pass between a tool's warm-up and its
first turn (every service starts in between), and a cold first burst of three calls read
twice as slow as the rest in a run of issue 22. Loops run at every point whose payload is a file;
batch paths at the seed point only, on the seed payload, at every ``batch_sizes`` size;
replays at the mixed workload's points, at one client and at the point's concurrency, with the
study's batching policy: a burst is one pass over the very texts a service's burst sends, so a
batched service and its replay do the same work, ramp-up and drain included.

Rows: ceiling.csv, batch_ceiling.csv and replay.csv, one per timed call (a replay's: per pass),
keyed by the point and round.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from servebench import paths, registry
from servebench.analysis.inprocess import (
    batch_path_id,
    batch_tool_id,
    loop_id,
    replay_id,
    replay_tool_id,
)
from servebench.measure.batch_ceiling import CSV_HEADER as BATCH_HEADER
from servebench.measure.batch_ceiling import batch_ceiling_command
from servebench.measure.ceiling import CSV_HEADER as LOOP_HEADER
from servebench.measure.ceiling import ceiling_command
from servebench.measure.plan import Plan
from servebench.measure.resident import Resident
from servebench.registry import Service

#: Calls per burst: at least this many, so that a median exists.
MIN_CALLS = 3
#: A replay's CSV columns (servekit.replay, rust-native-batched replay).
REPLAY_HEADER = "clients,iteration,texts,total_us"
#: The texts of a replay's untimed passes (at start, and before its first burst), per client:
#: one queue's worth, so the scheduler forms full runs, at a fraction of a whole pass.
REPLAY_WARMUP_PER_CLIENT = 1
#: Where each kind of unit writes its rows.
FILES = {"loop": "ceiling.csv", "batch": "batch_ceiling.csv", "replay": "replay.csv"}


@dataclass
class InProcessUnit:
    """A loop (``kind`` loop: an inference kind's, size 1), a batch path at one batch size
    (``kind`` batch) or a replay at one client count (``kind`` replay: a batched service's)
    on one variant and payload, and its resident tool."""

    kind: str
    owner: str  # the inference kind (loop) or the batched service (batch path, replay)
    variant: str
    payload: str
    size: int  # a batch path's batch size, a replay's clients, 1 for a loop
    tool: Resident
    impl: str = ""  # a batched service's inference kind (the CSVs' `impl`)
    call_s: float = field(default=0.0)  # the last burst's median call, for sizing the next

    @property
    def id(self) -> str:
        if self.kind == "loop":
            return loop_id(self.owner)
        return (batch_path_id if self.kind == "batch" else replay_id)(self.owner, self.size)

    @property
    def name(self) -> str:
        return f"{self.id}·{self.variant}"

    @property
    def group(self) -> str:
        """The turn this unit takes its bursts in: its tool kind's and owner's
        ('in-process:python', 'batch-path:rust-native-batched', 'replay:python-batched')."""
        if self.kind == "loop":
            return loop_id(self.owner)
        return (batch_tool_id if self.kind == "batch" else replay_tool_id)(self.owner)

    def key(self) -> dict[str, Any]:
        if self.kind == "loop":
            return {"variant": self.variant, "impl": self.owner}
        return {"variant": self.variant, "service": self.owner, "impl": self.impl}

    def request(self, seconds: float) -> str:
        if self.kind == "replay":  # one pass over every text: the work of a service's burst
            return f"{self.size} 1"
        calls = MIN_CALLS if self.call_s <= 0 else max(MIN_CALLS, math.ceil(seconds / self.call_s))
        return str(calls) if self.kind == "loop" else f"{self.size} {calls}"

    def warm_request(self) -> str:
        """An untimed call: one call, or a replay's pass over its first few texts."""
        if self.kind == "replay":
            return f"{self.size} 1 {REPLAY_WARMUP_PER_CLIENT * self.size}"
        return "1" if self.kind == "loop" else f"{self.size} 1"

    def settle(self) -> None:
        """Return once the tool has loaded its model and made its warm-up calls: one call,
        its row discarded (the run's first burst still follows an untimed one)."""
        self.tool.ask(self.warm_request())

    def burst(self, seconds: float) -> tuple[pd.DataFrame, float]:
        """About `seconds` of timed calls (a replay: one pass): their rows (the tool's CSV
        columns) and the median call in µs."""
        if self.call_s <= 0:  # the run's first burst: warm up, and size the timed one
            self._calls(self.request(0) if self.kind != "replay" else self.warm_request())
        rows = self._calls(self.request(seconds))
        return rows, self.call_s * 1e6

    def items(self, rows: pd.DataFrame) -> int:
        """Items per call of a burst: 1 (loop), the batch size, or a replay's texts."""
        return int(rows["texts"].iloc[0]) if self.kind == "replay" else self.size

    def _calls(self, request: str) -> pd.DataFrame:
        header = {"loop": LOOP_HEADER, "batch": BATCH_HEADER, "replay": REPLAY_HEADER}[self.kind]
        rows = pd.read_csv(io.StringIO("\n".join([header, *self.tool.ask(request)])))
        self.call_s = float(rows["total_us"].median()) / 1e6
        return rows


def ceiling_providers(services: list[Service]) -> dict[str, Service]:
    """The registry entry measuring the ceiling of each inference kind the services held
    against one use (registry.Service.bounded)."""
    kinds = dict.fromkeys(service.inference for service in services if service.bounded)
    return {kind: registry.ceiling_provider(kind) for kind in kinds}


def loop_tools(
    plan: Plan, stack: contextlib.ExitStack, payloads: list[str]
) -> dict[tuple[str, str, str], Resident]:
    """A resident loop per (inference kind, variant, payload) of the plan's services."""
    study, pinning = plan.study, plan.pinning
    tools = {}
    for kind, provider in ceiling_providers(plan.services).items():
        for variant, model_dir in plan.model_dirs.items():
            for payload in payloads:
                payload_file = paths.PAYLOADS / f"{payload}.txt"
                command = ceiling_command(
                    provider, model_dir, payload_file, 1, study.ceiling_warmup, pinning.threads
                )
                what = f"the {kind} loop ({variant}, {payload})"
                tool = Resident(
                    what, [*command, "--serve"], threads=pinning.threads, cpus=pinning.server_cpus
                )
                tools[(kind, variant, payload)] = stack.enter_context(tool)
    return tools


def batch_tools(plan: Plan, stack: contextlib.ExitStack) -> dict[tuple[str, str], Resident]:
    """A resident batch path per (batched service, variant), on the seed payload."""
    study, pinning = plan.study, plan.pinning
    payload_file = paths.PAYLOADS / f"{plan.seed_payload}.txt"
    tools = {}
    for service in plan.batched_services:
        for variant, model_dir in plan.model_dirs.items():
            command = batch_ceiling_command(
                service, model_dir, payload_file, batch_sizes=study.batch_sizes,
                iterations=1, warmup=max(1, study.ceiling_warmup // 4), threads=pinning.threads,
            )  # fmt: skip
            what = f"{service.name}'s batch path ({variant})"
            tool = Resident(
                what, [*command, "--serve"], threads=pinning.threads, cpus=pinning.server_cpus
            )
            tools[(service.name, variant)] = stack.enter_context(tool)
    return tools


def replay_tools(plan: Plan, stack: contextlib.ExitStack) -> dict[tuple[str, str], Resident]:
    """A resident replay per (batched service, variant) of the mixed workload's texts, at one
    client and at each mixed concurrency, with the study's batching policy (the service's
    environment); none without a mixed workload."""
    levels = plan.mixed_points()
    if not levels or not plan.batched_services:
        return {}
    texts_file = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "mixed.json"
    texts_file.write_text(json.dumps(plan.mixed_texts))
    clients = sorted({1, *levels})
    tools = {}
    for service in plan.batched_services:
        values = registry.command_values(service)
        for variant, model_dir in plan.model_dirs.items():
            command = [registry.render(part, values) for part in service.replay]
            command += ["--model-dir", str(model_dir), "--texts-file", str(texts_file)]
            command += ["--threads", str(plan.pinning.threads), "--serve"]
            command += ["--clients", ",".join(map(str, clients))]
            command += ["--warmup", str(REPLAY_WARMUP_PER_CLIENT * max(clients))]
            tool = Resident(
                f"{service.name}'s replay ({variant})",
                command,
                threads=plan.pinning.threads,
                cpus=plan.pinning.server_cpus,
                env=plan.study.batching_env(),
            )
            tools[(service.name, variant)] = stack.enter_context(tool)
    return tools


def start_units(plan: Plan, stack: contextlib.ExitStack) -> list[InProcessUnit]:
    """Every in-process unit of the run, its tool started (and stopped when `stack` closes)
    and settled: loaded and warmed up before this returns. The tools load their models on
    the server CPUs all at once; a service started meanwhile would share those CPUs with
    them, and its stage timings at concurrency 1 (which also size its first bursts) would
    read up to twice as slow (measured: the first service started, 12.6 ms against 6.5 ms
    when started alone)."""
    units = [
        InProcessUnit("loop", kind, variant, payload, 1, tool)
        for (kind, variant, payload), tool in loop_tools(plan, stack, list(plan.payloads)).items()
    ]
    for (name, variant), tool in batch_tools(plan, stack).items():
        service = next(s for s in plan.batched_services if s.name == name)
        units += [
            InProcessUnit("batch", name, variant, plan.seed_payload, size, tool, service.inference)
            for size in plan.study.batch_sizes
        ]
    for (name, variant), tool in replay_tools(plan, stack).items():
        service = next(s for s in plan.batched_services if s.name == name)
        units += [
            InProcessUnit("replay", name, variant, paths.MIXED, clients, tool, service.inference)
            for clients in sorted({1, *plan.mixed_points()})
        ]
    settled: set[int] = set()
    for unit in units:  # each tool once (a batch path at its first, smallest, size)
        if id(unit.tool) not in settled:
            settled.add(id(unit.tool))
            unit.settle()
    return units


def units_at(
    plan: Plan, point: tuple[str, int], services: list[Service], units: list[InProcessUnit]
) -> list[InProcessUnit]:
    """The in-process units a point runs: the loops of its services' inference kinds on its
    payload; at the seed point, the batch paths of its batched services too; at a mixed
    workload's point, their replays at one client and at its concurrency."""
    kinds = {s.inference for s in services if s.bounded}
    batched = {s.name for s in services if s.batching}
    seed = plan.is_seed_point(point)

    def runs(unit: InProcessUnit) -> bool:
        if unit.kind == "loop":
            return unit.owner in kinds
        if unit.kind == "batch":
            return seed and unit.owner in batched
        return unit.owner in batched and unit.size in (1, point[1])

    return [unit for unit in units if unit.payload == point[0] and runs(unit)]
