"""The load test, in order: build; the in-process loops and batch paths and every unit
started, then measured interleaved, point by point (measure/interleave.py, the in-process
limits among the units), then the open-loop search on the warm units; then per unit a fresh
process for the soak.

Notebook 02 calls `run_load_test`; nothing here draws a plot. Files written: docs/DATA.md.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from servebench import metadata, paths, registry
from servebench.config import ConfigError, Study
from servebench.measure import peak, resources, workload
from servebench.measure.inprocess import ceiling_providers
from servebench.measure.interleave import run_interleaved
from servebench.measure.lifecycle import prepare, start_service
from servebench.measure.openloop import PAUSE_S
from servebench.measure.plan import Plan, Unit
from servebench.measure.soak import soak
from servebench.measure.verify import (
    batch_invariance,
    expected_labels,
    expected_predictions,
    reference_sentences,
)
from servebench.models.isa import detect_isa
from servebench.process import confined_to
from servebench.progress import Progress, Step
from servebench.registry import Service
from servebench.rundir.writer import RunWriter
from servebench.say import say


def build_services(plan: Plan) -> dict[str, float]:
    """Build what the run needs, the ceilings' programs included (cargo caches the builds)."""
    wanted = {s.name: s for s in [*plan.services, *ceiling_providers(plan.services).values()]}
    return {name: registry.build(service, log=sys.stderr) for name, service in wanted.items()}


def core_peak(plan: Plan, writer: RunWriter, when: str) -> None:
    """core_peak.csv: the core's MatMul peak through ONNX Runtime (measure/peak.py), on the
    first server CPU, with the CPU's instruction set as detected at run time."""
    rows = peak.run(plan.model_dirs["fp32"] / "model.onnx", plan.pinning.server_cpus)
    cpu, isa = peak.first_cpu(plan.pinning.server_cpus) or "", detect_isa().isa or ""
    writer.append("core_peak.csv", [{"when": when, **row, "cpu": cpu, "isa": isa} for row in rows])
    best = peak.best(rows)
    say(
        f"the core's peak ({when} the rounds): fp32 {best['fp32']:.0f} GFLOP/s, "
        f"int8 {best['int8']:.0f} GOP/s ({isa or 'no int8 preset'})"
    )


def soak_phase(
    plan: Plan,
    unit: Unit,
    writer: RunWriter,
    sentences: list[dict[str, str]],
    expected: dict[str, Any],
) -> None:
    """The soak on a fresh process of the unit (its second cold start, verified and warmed up
    like the first): memory growth is a property of a process's life from its start."""
    with start_service(plan, unit, writer) as proc:
        prepare(plan, unit, proc, writer, sentences, expected, start=1)
        soak(plan, unit, proc, writer)


def unit_kind(plan: Plan, unit: Unit) -> str:
    """Progress kinds: a unit measured at the seed point only takes a fraction of the time."""
    return "seed unit" if plan.seed_point_only(unit) else "unit"


def plan_progress(plan: Plan, soaked: list[Unit]) -> Progress:
    """The run's steps for the progress lines: the in-process tools' start, each unit's
    start, each point's rounds, each unit's open-loop search, then each unit's soak. Until a
    kind of step is timed, its prior is what the plan fixes of it: a point's time budget (the
    seed point's with its table's rounds), the open-loop attacks if the search takes all its
    steps, the soak."""
    study = plan.study
    steps = [Step("in-process")]
    steps += [Step(f"start {unit_kind(plan, u)}", u.name) for u in plan.start_order()]
    steps += [
        Step("seed point" if plan.is_seed_point((p, c)) else "point", f"{p} c={c}")
        for p, c in plan.all_points()
    ]
    if study.openloop:
        steps += [Step("open loop", unit.name) for unit in plan.openloop_order()]
    if study.soak_s > 0:
        steps += [Step("soak", unit.name) for unit in soaked]
    prior = {
        "open loop": study.openloop_max_steps * (study.openloop_duration_s + PAUSE_S),
        "soak": study.soak_s,
    }
    if study.point_budget_s > 0:
        prior["point"] = study.point_budget_s
    if study.seed_point_budget_s > 0:
        # The seed table's rounds first: hey -n n_requests at ~300 req/s a unit (a guess until
        # the seed point is timed).
        tabled = sum(plan.in_seed_table(unit) for unit in plan.units)
        table_s = study.seed_table_runs * tabled * study.n_requests / 300
        prior["seed point"] = study.seed_point_budget_s + table_s
    return Progress(steps, prior_s=prior)


def service_size_mb(service: Service) -> float:
    """Size on disk of what a service needs besides the model: binary, code, packages."""
    values = registry.command_values(service)
    targets = [paths.ROOT / registry.render(p, values) for p in service.size_paths]
    site = registry.site_packages()
    targets += [site / package for package in service.size_packages]
    return resources.dir_size_mb([t for t in targets if t.exists()])


def service_rows(plan: Plan, run_dir: Path) -> list[dict[str, Any]]:
    """services.csv: each service's registry facts, cold start (median over all its
    variants; coldstarts.csv has each) and size."""
    coldstarts = pd.read_csv(run_dir / "coldstarts.csv")
    rows = []
    for service in plan.services:
        binary = service.binary_path()
        mine = coldstarts.loc[coldstarts["service"] == service.name, "cold_start_s"]
        rows.append(
            {
                **service.facts(),
                "cold_start_s": float(mine.median()),
                "size_mb": service_size_mb(service),
                "binary": str(binary.relative_to(paths.ROOT)) if binary else "",
            }
        )
    return rows


def model_record(plan: Plan) -> dict[str, Any]:
    """Which model was served: id, directories, and what the export wrote about each variant."""
    fp32 = plan.model_dirs["fp32"]
    record: dict[str, Any] = {"id": plan.study.model_id, "dir": str(fp32), "variants": {}}
    for name in ("export.json", "parity.json"):
        path = fp32 / name
        if path.is_file():
            document = json.loads(path.read_text())
            if name == "parity.json" and isinstance(document, dict):
                document = {k: v for k, v in document.items() if not isinstance(v, list)}
            record[name.removesuffix(".json")] = document
    for variant, model_dir in plan.model_dirs.items():
        export = model_dir / "export.json"
        record["variants"][variant] = {
            "dir": str(model_dir),
            "export": json.loads(export.read_text()) if export.is_file() else None,
        }
    return record


def check_models(plan: Plan) -> None:
    """Every variant's directory must exist before any service starts (notebook 01 makes
    them), and one text of the model's maximum length must fit a batch's token budget."""
    from servebench.models.serving_info import SERVING_FILE, is_complete

    for variant, model_dir in plan.model_dirs.items():
        if not is_complete(model_dir):
            raise FileNotFoundError(
                f"variant {variant}: no complete model directory at {model_dir}; run notebook "
                "01 (make report runs it) or `make model` for this model and variant"
            )
    if plan.batched_services:
        serving = json.loads((plan.model_dirs["fp32"] / SERVING_FILE).read_text())
        if plan.study.max_batch_tokens < int(serving["max_length"]):
            raise ConfigError(
                f"max_batch_tokens={plan.study.max_batch_tokens}: must be at least the "
                f"model's maximum length ({serving['max_length']} tokens), or a long text "
                "could never be batched"
            )


def run_load_test(study: Study, run_dir: Path) -> Path:
    """Everything the load-test notebook does, in order; returns the run directory."""
    plan = Plan.from_study(study)
    check_models(plan)
    plan = replace(plan, batch_invariant=batch_invariance(run_dir, plan.model_dirs))
    writer = RunWriter(run_dir)
    metadata.update(
        run_dir,
        pinning=plan.pinning.as_dict(),
        model=model_record(plan),
        **metadata.collect(study.as_dict()),
    )
    say(f"building {len(plan.services)} service(s)")
    metadata.update(run_dir, build_s=build_services(plan))

    sentences = reference_sentences()
    # Each variant's own answers: a service is checked against ONNX Runtime on the very
    # model.onnx it serves (int8 differs from fp32 by more than the 1e-4 tolerance).
    expected = {
        variant: expected_predictions(model_dir, sentences)
        for variant, model_dir in plan.model_dirs.items()
    }
    mixed_labels = {
        variant: expected_labels(model_dir, plan.mixed_texts)
        for variant, model_dir in plan.model_dirs.items()
    }
    if plan.mixed_texts:
        rows = workload.describe(plan.mixed_texts, plan.model_dirs["fp32"])
        writer.append("workload.csv", rows)
    soaked = plan.soak_order() if plan.study.soak_s > 0 else []
    progress = plan_progress(plan, soaked)
    with confined_to(plan.pinning.orchestrator_cpus()):
        core_peak(plan, writer, "before")
        run_interleaved(plan, writer, sentences, expected, mixed_labels, progress)
        progress.end_step()
        core_peak(plan, writer, "after")
        say(progress.forecast())
        if soaked:
            say(f"soak, each on a fresh process: {' -> '.join(u.name for u in soaked)}")
            for unit in soaked:
                say(progress.step(f"soak: {unit.name}"))
                soak_phase(plan, unit, writer, sentences, expected[unit.variant])

    pd.DataFrame(service_rows(plan, run_dir)).to_csv(run_dir / "services.csv", index=False)
    writer.combine_requests()
    say(f"{progress.finish()} load test written to {run_dir}")
    return run_dir
