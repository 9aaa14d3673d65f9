"""The in-process units: the loops and batch paths timed inside the rounds, as paired ratios.

The load test runs each in-process tool (a registry ``ceiling`` loop per inference kind, a
``batch_ceiling`` batch path per batched service, service/registry.yaml "in-process tools")
as a unit of the rounds, beside the services: one short burst of timed calls per round, on
the server CPUs. So the in-process limits sample the same seconds of the machine as the
services they bound, and three kinds of ratio get intervals like every other
(:data:`KINDS`):

* ``efficiency`` - a service's requests/sec ÷ its inference kind's loop (same variant, same
  round): how much of what tokenize + ONNX Runtime allow the service delivers over HTTP;
* ``in_process_variant`` - a loop on a variant ÷ the same loop on fp32: the model's factor
  without HTTP;
* ``batch_size`` - a batch path at batch size b ÷ the same path at batch 1: what batching
  can give on this CPU.

A unit's value per burst is items/s: ``batch_size × 1e6 ÷ median(total_us)`` of the burst's
calls, times the server's cores for a loop (as :func:`servebench.analysis.stats.ceiling_rps`,
so that a loop is the ceiling a service is divided by). Units are named in ratios.csv by
:func:`loop_id` and :func:`batch_path_id`: names no registry service can have (a colon).
"""

from __future__ import annotations

import pandas as pd

from servebench.analysis import stats
from servebench.analysis.paired import Comparison, Key

KINDS = ("efficiency", "in_process_variant", "batch_size")
POINT = ["payload", "concurrency", "round"]
LOOP = "in-process"
BATCH_PATH = "batch-path"


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


def parse_id(name: str) -> tuple[str, str, int] | None:
    """('loop', inference, 1) or ('batch', service, b) for an in-process unit's name; None
    for a service's."""
    parts = str(name).split(":")
    if len(parts) == 2 and parts[0] == LOOP:
        return "loop", parts[1], 1
    if len(parts) == 3 and parts[0] == BATCH_PATH and parts[2].isdigit():
        return "batch", parts[1], int(parts[2])
    return None


def label(name: str) -> str | None:
    """How the report names an in-process unit ('python loop (in process)', 'Rust native
    batched batch path, b=16'); None for a service."""
    parsed = parse_id(name)
    if parsed is None:
        return None
    kind, owner, size = parsed
    return f"{owner} loop (in process)" if kind == "loop" else f"{owner} batch path, b={size}"


def burst_rps(kind: str, batch_size: int, median_us: float, server_cores: int) -> float:
    """An in-process burst's value in the ratios: a loop's ceiling
    (:func:`servebench.analysis.stats.ceiling_rps`), a batch path's items/s."""
    if kind == "loop":
        return stats.ceiling_rps(median_us, server_cores)
    return batch_size * 1e6 / median_us


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


def comparisons(
    units: list[Key], inference: dict[str, str], base_variant: str = "fp32"
) -> list[Comparison]:
    """The in-process ratios among `units` (services and in-process units, (name, variant)):
    each service ÷ its inference kind's loop (`inference`: service -> kind), each loop's
    variant ÷ its fp32, each batch path's size ÷ its batch 1; only where both sides are
    among the units."""
    known = set(units)
    found: list[Comparison] = []
    for name, variant in units:
        parsed = parse_id(name)
        if parsed is None:
            versus = (loop_id(inference.get(name, "")), variant)
            if name in inference and versus in known:
                found.append(Comparison("efficiency", (name, variant), versus))
            continue
        kind, owner, size = parsed
        if kind == "loop" and variant != base_variant and (name, base_variant) in known:
            found.append(Comparison("in_process_variant", (name, variant), (name, base_variant)))
        one = (batch_path_id(owner, 1), variant)
        if kind == "batch" and size != 1 and one in known:
            found.append(Comparison("batch_size", (name, variant), one))
    return found
