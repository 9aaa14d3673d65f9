"""The in-process batching ceiling's command: a batched service's own batch path, no HTTP.

Each batched service's registry entry names the command (`batch_ceiling`) that runs the very
code its inference thread runs (tokenize b texts in one call, pad, one ONNX Runtime `run`,
softmax per row) at a batch size, pinned to the servers' CPUs like the batch-1 ceiling and
timed inside the rounds at the seed point (measure/inprocess.py). Its items/s at batch size b
bounds what the service can answer when its batches have b requests, so a batched service's
efficiency is measured against the ceiling at the batch size it actually formed, not only
against batch 1.
"""

from __future__ import annotations

from pathlib import Path

from servebench import registry
from servebench.registry import Service

CSV_HEADER = "batch_size,iteration,tokenization_us,inference_us,total_us"


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
