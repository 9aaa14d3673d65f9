"""The in-process units: the loops, batch paths and replays timed inside the rounds, as
paired ratios.

The load test runs each in-process tool (a registry ``ceiling`` loop per inference kind; a
``batch_ceiling`` batch path and a ``replay`` per batched service, service/registry.yaml
"in-process tools") as a unit of the rounds, beside the services: one short burst per round,
on the server CPUs. So the in-process limits sample the same seconds of the machine as the
services they bound, and five kinds of ratio get intervals like every other (:data:`KINDS`):

* ``efficiency`` - a service's requests/sec ÷ its inference kind's batch-1 limit (same
  variant, same round): its loop at a payload's point; at the mixed workload's, the replay
  at one client of the batched service of that kind (the workload's texts one at a time);
* ``in_process_variant`` - a loop on a variant ÷ the same loop on fp32: the model's factor
  without HTTP;
* ``batch_size`` - a batch path at batch size b ÷ the same path at batch 1: what batching
  can give on this CPU, on copies of one text;
* ``queue_efficiency`` - a batched service's requests/sec ÷ its own replay at the point's
  concurrency: how much of what its queue and scheduling allow on this workload it delivers
  over HTTP;
* ``queue_batching`` - a replay at the point's concurrency ÷ the same replay at one client:
  what batching gives on this workload without HTTP.

A unit's value per burst is items/s: ``items × 1e6 ÷ median(total_us)`` of the burst's calls
(items: 1 for a loop, b for a batch path, the pass's texts for a replay), times the server's
cores for a loop (as :func:`servebench.analysis.stats.ceiling_rps`, so that a loop is the
ceiling a service is divided by). Units are named in ratios.csv by :func:`loop_id`,
:func:`batch_path_id` and :func:`replay_id`: names no registry service can have (a colon).
"""

from __future__ import annotations

import pandas as pd

from servebench.analysis import stats
from servebench.analysis.paired import Comparison, Key

KINDS = ("efficiency", "in_process_variant", "batch_size", "queue_efficiency", "queue_batching")
POINT = ["payload", "concurrency", "round"]
LOOP = "in-process"
BATCH_PATH = "batch-path"
REPLAY = "replay"


def loop_id(inference: str) -> str:
    """The ratios' name of an inference kind's in-process loop ('in-process:python')."""
    return f"{LOOP}:{inference}"


def batch_tool_id(service: str) -> str:
    """A batched service's batch path over all its sizes ('batch-path:rust-native-batched'):
    the tool the load test gives one turn per round."""
    return f"{BATCH_PATH}:{service}"


def batch_path_id(service: str, batch_size: int) -> str:
    """The ratios' name of a batched service's batch path at one size
    ('batch-path:rust-native-batched:16')."""
    return f"{batch_tool_id(service)}:{batch_size}"


def replay_tool_id(service: str) -> str:
    """A batched service's replay over all its client counts ('replay:python-batched'): the
    tool the load test gives one turn per round."""
    return f"{REPLAY}:{service}"


def replay_id(service: str, clients: int) -> str:
    """The ratios' name of a batched service's replay at one client count
    ('replay:python-batched:50')."""
    return f"{replay_tool_id(service)}:{clients}"


def parse_id(name: str) -> tuple[str, str, int] | None:
    """('loop', inference, 1), ('batch', service, b) or ('replay', service, clients) for an
    in-process unit's name; None for a service's."""
    parts = str(name).split(":")
    if len(parts) == 2 and parts[0] == LOOP:
        return "loop", parts[1], 1
    if len(parts) == 3 and parts[2].isdigit():
        kinds = {BATCH_PATH: "batch", REPLAY: "replay"}
        if parts[0] in kinds:
            return kinds[parts[0]], parts[1], int(parts[2])
    return None


def label(name: str) -> str | None:
    """How the report names an in-process unit ('python loop (in process)', 'Rust native
    batched batch path, b=16', 'python-batched replay, 50 clients'); None for a service."""
    parsed = parse_id(name)
    if parsed is None:
        return None
    kind, owner, size = parsed
    if kind == "replay":
        return f"{owner} replay, {size} client{'s' if size != 1 else ''} (in process)"
    return f"{owner} loop (in process)" if kind == "loop" else f"{owner} batch path, b={size}"


def burst_rps(kind: str, items: int, median_us: float, server_cores: int) -> float:
    """An in-process burst's value in the ratios: a loop's ceiling
    (:func:`servebench.analysis.stats.ceiling_rps`), a batch path's or a replay's items/s
    (`items` per call: the batch size, the pass's texts)."""
    if kind == "loop":
        return stats.ceiling_rps(median_us, server_cores)
    return items * 1e6 / median_us


def loop_bursts(ceiling: pd.DataFrame | None, server_cores: int) -> pd.DataFrame:
    """One row per loop burst of ceiling.csv (a round of a point): ``service`` (its
    :func:`loop_id`), ``variant``, the point, ``round``, ``rps`` (items/s × the cores)."""
    if ceiling is None or ceiling.empty or "round" not in ceiling:
        return pd.DataFrame(columns=["service", "variant", *POINT, "rps"])
    keys = ["impl", "variant", *POINT]
    medians = ceiling.groupby(keys, sort=False)["total_us"].median().reset_index()
    medians["rps"] = [burst_rps("loop", 1, us, server_cores) for us in medians["total_us"]]
    medians["service"] = [loop_id(impl) for impl in medians["impl"]]
    return medians[["service", "variant", *POINT, "rps"]]


def batch_bursts(batch_ceiling: pd.DataFrame | None) -> pd.DataFrame:
    """One row per batch-path burst of batch_ceiling.csv: ``service`` (its
    :func:`batch_path_id`), ``variant``, the point, ``round``, ``rps`` (items/s)."""
    if batch_ceiling is None or batch_ceiling.empty or "round" not in batch_ceiling:
        return pd.DataFrame(columns=["service", "variant", *POINT, "rps"])
    keys = ["service", "batch_size", "variant", *POINT]
    medians = batch_ceiling.groupby(keys, sort=False)["total_us"].median().reset_index()
    medians["rps"] = [
        burst_rps("batch", int(b), us, 1)
        for b, us in zip(medians["batch_size"], medians["total_us"], strict=True)
    ]
    medians["service"] = [
        batch_path_id(s, int(b))
        for s, b in zip(medians["service"], medians["batch_size"], strict=True)
    ]
    return medians[["service", "variant", *POINT, "rps"]]


def replay_bursts(replay: pd.DataFrame | None) -> pd.DataFrame:
    """One row per replay burst of replay.csv: ``service`` (its :func:`replay_id`),
    ``variant``, the point, ``round``, ``rps`` (texts answered ÷ the passes' time)."""
    if replay is None or replay.empty or "round" not in replay:
        return pd.DataFrame(columns=["service", "variant", *POINT, "rps"])
    keys = ["service", "clients", "variant", *POINT]
    sums = replay.groupby(keys, sort=False)[["texts", "total_us"]].sum().reset_index()
    sums["rps"] = sums["texts"] * 1e6 / sums["total_us"]
    sums["service"] = [
        replay_id(s, int(c)) for s, c in zip(sums["service"], sums["clients"], strict=True)
    ]
    return sums[["service", "variant", *POINT, "rps"]]


def comparisons(
    units: list[Key],
    inference: dict[str, str],
    base_variant: str = "fp32",
    replayed: dict[str, str] | None = None,
) -> list[Comparison]:
    """The in-process ratios among `units` (services and in-process units, (name, variant)):
    each service ÷ its inference kind's loop (`inference`: service -> kind) and ÷ the replay
    at one client of the batched service that `replayed` names for its kind (the loops run at
    a payload's points, the replays at the mixed workload's); each batched service ÷ its own
    replay at more clients;
    each loop's variant ÷ its fp32, each batch path's size ÷ its batch 1, each replay's
    clients ÷ its one client; only where both sides are among the units."""
    known = set(units)
    replayed = replayed or {}
    found: list[Comparison] = []
    for name, variant in units:
        parsed = parse_id(name)
        if parsed is None:
            kind_of = inference.get(name)
            loop = (loop_id(kind_of or ""), variant)
            alone = (replay_id(replayed.get(kind_of or "", ""), 1), variant)
            # Both where both are known (a whole run's units): the loops and the replays
            # run at different points, and a ratio exists only where both sides have bursts.
            found += [
                Comparison("efficiency", (name, variant), limit)
                for limit in (loop, alone)
                if kind_of is not None and limit in known
            ]
            found += [
                Comparison("queue_efficiency", (name, variant), (unit, v))
                for unit, v in units
                if v == variant and _batched_replay_owner(unit) == name
            ]
            continue
        kind, owner, size = parsed
        if kind == "loop" and variant != base_variant and (name, base_variant) in known:
            found.append(Comparison("in_process_variant", (name, variant), (name, base_variant)))
        one = (batch_path_id(owner, 1), variant)
        if kind == "batch" and size != 1 and one in known:
            found.append(Comparison("batch_size", (name, variant), one))
        alone = (replay_id(owner, 1), variant)
        if kind == "replay" and size != 1 and alone in known:
            found.append(Comparison("queue_batching", (name, variant), alone))
    return found


def _batched_replay_owner(unit: str) -> str | None:
    """The batched service whose replay at more than one client `unit` is, else None."""
    parsed = parse_id(unit)
    return parsed[1] if parsed is not None and parsed[0] == "replay" and parsed[2] > 1 else None
