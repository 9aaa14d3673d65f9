"""The in-process batching ceiling: a batched service's own batch path, no HTTP around it.

Each batched service's registry entry names the command (`batch_ceiling`) that runs the very
code its inference thread runs (tokenize b texts in one call, pad, one ONNX Runtime `run`,
softmax per row) at each batch size, pinned to the servers' CPUs like the batch-1 ceiling. Its
items/s at batch size b bounds what the service can answer when its batches have b requests,
so a batched service's efficiency is measured against the ceiling at the batch size it actually
formed, not only against batch 1.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from servebench import registry
from servebench.measure.ceiling import CeilingError, run_tool
from servebench.registry import Service

CSV_HEADER = "batch_size,iteration,tokenization_us,inference_us,total_us"


class BatchCeilingError(CeilingError):
    """A batch-ceiling tool printed something other than its CSV."""


def batch_ceiling_command(
    service: Service,
    model_dir: Path,
    payload_file: Path,
    *,
    batch_sizes: list[int],
    iterations: int,
    warmup: int,
    threads: int,
) -> list[str]:
    values = registry.command_values(service)
    argv = [registry.render(part, values) for part in service.batch_ceiling]
    argv += ["--model-dir", str(model_dir), "--payload-file", str(payload_file)]
    argv += ["--iterations", str(iterations), "--warmup", str(warmup), "--threads", str(threads)]
    return [*argv, "--batch-sizes", ",".join(str(b) for b in batch_sizes)]


def parse(text: str, service: Service, payload: str, batch_sizes: list[int]) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text))
    expected = CSV_HEADER.split(",")
    if list(frame.columns) != expected:
        raise BatchCeilingError(
            f"{service.name} batch ceiling printed columns {list(frame.columns)}, not {expected}"
        )
    missing = sorted(set(batch_sizes) - set(frame["batch_size"]))
    if missing:
        raise BatchCeilingError(f"{service.name} batch ceiling gave no rows for batch {missing}")
    frame.insert(0, "payload", payload)
    frame.insert(0, "impl", service.inference)
    frame.insert(0, "service", service.name)
    return frame


def measure(
    model_dir: Path,
    payload: str,
    payload_file: Path,
    *,
    services: list[Service],
    batch_sizes: list[int],
    iterations: int,
    warmup: int,
    threads: int,
    cpus: str | None,
) -> pd.DataFrame:
    """Each batched service's batch path in a fresh process pinned to `cpus`; one row per
    timed batch call."""
    frames = []
    for service in services:
        command = batch_ceiling_command(
            service,
            model_dir,
            payload_file,
            batch_sizes=batch_sizes,
            iterations=iterations,
            warmup=warmup,
            threads=threads,
        )
        output = run_tool(command, cpus, threads, f"{service.name} batch ceiling")
        frames.append(parse(output, service, payload, batch_sizes))
    return pd.concat(frames, ignore_index=True)


def items_per_s(frame: pd.DataFrame) -> pd.DataFrame:
    """Median items/s per (service, variant if present, batch_size): b ÷ median call time."""
    keys = [k for k in ("service", "impl", "variant", "payload", "batch_size") if k in frame]
    medians = frame.groupby(keys, sort=False)["total_us"].median().reset_index()
    medians["items_per_s"] = medians["batch_size"] * 1e6 / medians["total_us"]
    return medians
