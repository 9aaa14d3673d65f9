"""The interleaved phase: every unit started and warm, the units alternating in short bursts.

A shared machine's speed drifts by tens of percent within an hour, and on a noisy host by
more within a minute, so measuring one service after another compares the machine's minutes
as much as the services. Here every unit (a service serving one model variant; the A/A
control among them) is started, verified and warmed up first, and all stay up, idle ones
costing memory only. Then at each point (payload, concurrency) the units run one short burst
each (~``burst_s`` of work) per *round*, in an order drawn anew for every other round and
reversed in the round after (:func:`servebench.analysis.paired.next_order`), so the two
sides of every ratio are seconds apart and a drift within a pair of rounds favours neither.
(Full ``hey -n 1000`` bursts put them tens of seconds apart: on a noisy 2-core host 0.5-1 s
bursts gave 3-5x narrower intervals for the same minutes, and placing each ratio's two
bursts side by side gained nothing over the shuffled order, issue 22.) An in-process tool's
units take one turn together (:func:`turns`), so the ratios among them compare bursts a
fraction of a second apart, not anywhere in a round of forty. The seed point first
runs ``seed_table_runs`` rounds of the seed's own ``hey -n n_requests`` for its table
(loadtests.csv ``seed_table``); the ratios come from the short rounds only.

A point stops (:func:`stop_reason`) once every ratio the study states there (each service ÷
its baseline, int8 ÷ fp32, batched ÷ twin, the A/A control ÷ its baseline) has a 95 %
interval within the point's target (:meth:`Plan.precision_target`), checked after each
complete pair of rounds from ``min_rounds`` on, or at ``max_rounds``, or when another round
would overrun the point's budget. After each such check the units whose ratios have all
converged sit out (:func:`still_needed`): the budget goes to the ratios still wide. Between
rounds the drift probe (measure/drift.py) times the machine.

Files: loadtests.csv (``round``, ``seed_table``), requests, points.csv, drift.csv
(docs/DATA.md).
"""

from __future__ import annotations

import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from servebench import paths
from servebench.analysis import inprocess as inprocess_ratios
from servebench.analysis import paired
from servebench.analysis.paired import next_order
from servebench.measure import inprocess as in_process
from servebench.measure.drift import DriftProbe
from servebench.measure.hey import render_summary
from servebench.measure.inprocess import InProcessUnit
from servebench.measure.lifecycle import (
    measure_mixed_point,
    measure_point,
    prepare,
    report_point,
    start_service,
)
from servebench.measure.openloop import openloop_search
from servebench.measure.plan import Plan, Unit
from servebench.metadata import now_iso
from servebench.paths import MIXED
from servebench.process import ServiceProcess
from servebench.progress import Progress
from servebench.rundir.writer import RunWriter
from servebench.say import say, unit_column

Point = tuple[str, int]  # (payload, concurrency); payload `mixed` is the mixed workload


@dataclass
class Warm:
    """A started, verified and warmed-up unit."""

    unit: Unit
    proc: ServiceProcess
    latency_c1_s: dict[str, float]  # median c=1 latency per payload (sizes the first burst)
    mixed_labels: list[str]  # ONNX Runtime's labels for the mixed texts, on this variant
    pace_s: dict[Point, float] = field(default_factory=dict)  # s per request, last burst


def comparisons(
    units: list[Unit], in_process: list[InProcessUnit] | None = None
) -> list[paired.Comparison]:
    """The ratios the study states among these units (their registry baseline and twin),
    and those against the in-process units (analysis/inprocess.py)."""
    services = {u.service.name: u.service for u in units}
    keys = [(u.service.name, u.variant) for u in units]
    found = paired.comparisons(
        keys,
        baseline={name: s.baseline for name, s in services.items()},
        twin={name: s.twin for name, s in services.items()},
        controls=[name for name, s in services.items() if s.control],
        steps={name: s.step_from for name, s in services.items()},
        rungs=[name for name, s in services.items() if s.rung],
    )
    if in_process:
        keys += [(u.id, u.variant) for u in in_process]
        inference = {name: s.inference for name, s in services.items() if s.bounded}
        replayed = {u.impl: u.owner for u in in_process if u.kind == "replay"}
        found += inprocess_ratios.comparisons(keys, inference, replayed=replayed)
    return found


def stop_reason(
    rounds: int,
    ratios: pd.DataFrame,
    *,
    min_rounds: int,
    max_rounds: int,
    elapsed_s: float,
    budget_s: float,
) -> str:
    """Why a point stops after `rounds` rounds, or '' to run another.

    Convergence is judged only after an even number of rounds (a counterbalanced pair
    complete) and from `min_rounds` on; a point with no ratio to state converges at once.
    From `min_rounds` on (a floor: below it no interval is worth stating), another round is
    not started when it would end past the budget (`budget_s` 0: none), at the mean round's
    length."""
    pair_complete = rounds >= min_rounds and rounds % 2 == 0
    if pair_complete and (ratios.empty or bool(ratios["converged"].all())):
        return "converged"
    if rounds >= max_rounds:
        return "max_rounds"
    if rounds >= min_rounds and budget_s > 0 and elapsed_s + elapsed_s / rounds > budget_s:
        return "budget"
    return ""


def start_all(
    plan: Plan,
    stack: contextlib.ExitStack,
    writer: RunWriter,
    sentences: list[dict[str, str]],
    expected: dict[str, dict[str, Any]],
    mixed_labels: dict[str, list[str]],
    progress: Progress,
) -> dict[str, Warm]:
    """Every unit started (in the plan's shuffled order), verified and warmed up; each stays
    running until `stack` closes."""
    warm: dict[str, Warm] = {}
    for unit in plan.start_order():
        say(progress.step(f"start, verify and warm up {unit.name}"))
        proc = stack.enter_context(start_service(plan, unit, writer))
        latency = prepare(plan, unit, proc, writer, sentences, expected[unit.variant])
        warm[unit.name] = Warm(unit, proc, latency, mixed_labels[unit.variant])
    for each in warm.values():  # the units started first waited longest: still alive?
        each.proc.check_alive()
    return warm


def burst(
    plan: Plan,
    warm: Warm,
    point: Point,
    round_number: int,
    position: int,
    writer: RunWriter,
    seed_table: bool = False,
) -> dict[str, Any]:
    """One unit's burst at a point (a full ``hey -n n_requests`` run of the seed's table when
    `seed_table`, else a short one at the pace of its last burst there, so that every
    unit's bursts last about ``burst_s``, :meth:`Plan.hey_requests`); its rows written;
    returns the loadtests.csv row."""
    payload, concurrency = point
    key = {**warm.unit.key(), "payload": payload, "concurrency": concurrency}
    key["round"] = round_number
    started = now_iso()
    if payload == MIXED:
        row, mixed = measure_mixed_point(plan, warm.proc, concurrency, warm.mixed_labels)
        writer.records(key, mixed.records)
    else:
        pace = warm.pace_s.get(point, warm.latency_c1_s[payload])
        requests = plan.study.n_requests if seed_table else None
        row, run = measure_point(plan, warm.proc, payload, concurrency, pace, requests)
        writer.hey_run(key, run.records, render_summary(run))
        if row["rps"] > 0:
            warm.pace_s[point] = 1 / row["rps"]
    full = {**key, **row, "order": position, "started": started, "seed_table": seed_table}
    writer.append("loadtests.csv", [full])
    report_point(warm.unit, payload, concurrency, row)
    return full


def in_process_burst(
    plan: Plan,
    unit: InProcessUnit,
    point: Point,
    round_number: int,
    position: int,
    writer: RunWriter,
) -> dict[str, Any]:
    """One in-process unit's burst: its timed calls appended to ceiling.csv (a loop),
    batch_ceiling.csv (a batch path) or replay.csv (a replay); returns its row for the round's
    ratios (``service`` is the unit's ratios name, ``rps``
    :func:`servebench.analysis.inprocess.burst_rps`)."""
    rows, median_us = unit.burst(plan.study.burst_s / 2)
    cores = plan.pinning.server_cores
    rps = inprocess_ratios.burst_rps(unit.kind, unit.items(rows), median_us, cores)
    key = {"payload": point[0], "concurrency": point[1], "round": round_number, "order": position}
    for column, value in reversed(list({**key, **unit.key()}.items())):
        rows.insert(0, column, value)
    writer.append(in_process.FILES[unit.kind], rows.to_dict("records"))
    say(f"  {unit_column(unit.name)}{point[0]:<7} c={point[1]:<3} {rps:8.1f} items/s in process")
    return {"service": unit.id, "variant": unit.variant, "round": round_number, "rps": rps}


def turns(services: list[str], local: list[InProcessUnit]) -> dict[str, list[str]]:
    """A round's turns and the bursts each runs, in the order given: a service alone; an
    in-process tool kind and owner (:attr:`InProcessUnit.group`) with its units back to
    back, variant by variant, size by size."""
    groups = {name: [name] for name in services}
    for unit in local:
        groups.setdefault(unit.group, []).append(unit.name)
    return groups


def round_bursts(
    order: list[str], groups: dict[str, list[str]], active: list[str], round_number: int
) -> list[str]:
    """The bursts of a round whose turns come in `order`: each turn's units still active,
    reversed in odd rounds (as the order of turns is, :func:`paired.next_order`), so that
    a unit's place within its turn favours no side either."""
    bursts = []
    for turn in order:
        members = [name for name in groups[turn] if name in active]
        bursts += members[::-1] if round_number % 2 else members
    return bursts


def still_needed(units: dict[str, tuple[str, str]], ratios: pd.DataFrame) -> list[str]:
    """The units (name -> (service, variant) as the ratios name it) taking part, on either
    side, in a ratio that has not converged, in the given order: the others have said what
    they can and sit out the point's next rounds."""
    wide = ratios[~ratios["converged"].astype(bool)]
    sides = set(zip(wide["service"], wide["variant"], strict=True))
    sides |= set(zip(wide["versus_service"], wide["versus_variant"], strict=True))
    return [name for name, key in units.items() if key in sides]


def measure_point_interleaved(
    plan: Plan,
    point: Point,
    warm: dict[str, Warm],
    writer: RunWriter,
    probe: DriftProbe,
    seed: int,
    tools: list[InProcessUnit] | None = None,
) -> dict[str, Any]:
    """The seed table's rounds (at the seed point), then rounds of short bursts until
    :func:`stop_reason`, the units whose ratios have converged sitting out after each pair
    of rounds; returns the point's points.csv row."""
    study = plan.study
    units = plan.units_at(point)
    local = in_process.units_at(plan, point, [u.service for u in units], tools or [])
    keys = {u.name: (u.service.name, u.variant) for u in units}
    keys |= {u.name: (u.id, u.variant) for u in local}
    by_name = {u.name: u for u in local}
    names = list(keys)
    groups = turns([u.name for u in units], local)
    compared = comparisons(units, local)
    target, budget = plan.precision_target(point)
    rng = random.Random(seed)
    started_at, started = time.monotonic(), now_iso()
    number, order = 0, []
    services = [u.name for u in units if plan.in_seed_table(u)]
    for table_round in range(plan.seed_table_rounds(point)):
        order = next_order(order, services, table_round, rng)
        for position, name in enumerate(order):
            burst(plan, warm[name], point, number, position, writer, seed_table=True)
        number += 1
        writer.append("drift.csv", [drift_row(probe, point, number - 1)])
    paired_at = time.monotonic()
    rows: list[dict[str, Any]] = []
    ratios = pd.DataFrame(columns=paired.RATIO_COLUMNS)
    stop, rounds, active, order = "", 0, names, []
    while not stop:
        turns_left = [turn for turn, members in groups.items() if set(members) & set(active)]
        order = next_order(order, turns_left, rounds, rng)
        for position, name in enumerate(round_bursts(order, groups, active, rounds)):
            if name in by_name:
                rows.append(in_process_burst(plan, by_name[name], point, number, position, writer))
            else:
                rows.append(burst(plan, warm[name], point, number, position, writer))
        number += 1
        rounds += 1
        writer.append("drift.csv", [drift_row(probe, point, number - 1)])
        bursts = pd.DataFrame(rows)[["service", "variant", "round", "rps"]]
        ratios = paired.ratio_table(bursts, compared, target)
        stop = stop_reason(
            rounds,
            ratios,
            min_rounds=study.min_rounds,
            max_rounds=study.max_rounds,
            elapsed_s=time.monotonic() - paired_at,
            budget_s=budget,
        )
        if rounds >= study.min_rounds and rounds % 2 == 0:
            active = still_needed(keys, ratios) or names
    widest = float(ratios["half_width_pct"].max()) if not ratios.empty else float("nan")
    control = ratios[ratios["kind"] == "control"]
    floor = float(control["half_width_pct"].iloc[0]) if len(control) else float("nan")
    say(
        f"  {point[0]} c={point[1]}: {rounds} rounds, {stop}, widest ratio CI ±{widest:.1f} %"
        + (f", A/A ±{floor:.1f} %" if len(control) else "")
    )
    return {
        "payload": point[0],
        "concurrency": point[1],
        "units": len(units),
        "in_process_units": len(local),
        "rounds": rounds,
        "converged": stop == "converged",
        "max_half_width_pct": widest,
        "control_ratio": float(control["ratio"].iloc[0]) if len(control) else float("nan"),
        "noise_floor_pct": floor,
        "target_ci_pct": target,
        "wall_s": time.monotonic() - started_at,
        "stop": stop,
        "started": started,
    }


def drift_row(probe: DriftProbe, point: Point | None, round_number: int) -> dict[str, Any]:
    """A drift.csv row: the probe now, after `round_number` of `point` (None: before any)."""
    payload, concurrency = point if point is not None else ("", 0)
    measured = probe.measure()
    return {
        "seq": measured["seq"],
        "elapsed_s": measured["elapsed_s"],
        "payload": payload,
        "concurrency": concurrency,
        "round": round_number,
        "probe_us": measured["probe_us"],
        "iterations": measured["iterations"],
    }


def run_interleaved(
    plan: Plan,
    writer: RunWriter,
    sentences: list[dict[str, str]],
    expected: dict[str, dict[str, Any]],
    mixed_labels: dict[str, list[str]],
    progress: Progress,
) -> None:
    """Start every unit, then every point's rounds, then the open-loop searches; every process
    is stopped on the way out (an error included)."""
    payload_file = paths.PAYLOADS / f"{plan.seed_payload}.txt"
    probe = DriftProbe(
        plan.model_dirs["fp32"],
        payload_file,
        threads=plan.pinning.threads,
        cpus=plan.pinning.server_cpus,
    )
    with contextlib.ExitStack() as stack:
        stack.enter_context(probe)
        say(progress.step("in-process loops and batch paths: load and warm up"))
        tools = in_process.start_units(plan, stack)
        warm = start_all(plan, stack, writer, sentences, expected, mixed_labels, progress)
        writer.append("drift.csv", [drift_row(probe, None, -1)])
        say(progress.forecast())
        for number, point in enumerate(plan.all_points()):
            say(progress.step(f"point {point[0]} c={point[1]}: rounds of bursts"))
            seed = plan.study.shuffle_seed + number
            row = measure_point_interleaved(plan, point, warm, writer, probe, seed, tools)
            writer.append("points.csv", [row])
        if plan.study.openloop:
            # On the warm processes, while every unit is still up: a fresh start per unit would
            # cost ~10 s of the 20 minutes each and measure nothing the search needs.
            for unit in plan.openloop_order():
                say(progress.step(f"open loop: {unit.name}"))
                openloop_search(plan, unit, warm[unit.name].proc, writer)
