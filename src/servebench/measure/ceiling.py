"""The in-process ceiling: tokenize + ONNX Runtime inference with no HTTP around it.

One ceiling per `inference` kind of the registry, measured by the command of the registry
entry that declares `ceiling`, which lives beside its service: Python's is
`python -m servekit.ceiling` (the services' own `Classifier`), Rust's `rust-native bench`. This
module runs them, pinned to the servers' CPU set with the same thread settings, and reads
their CSV (iteration,tokenization_us,inference_us,total_us), so a service's efficiency is its
requests/sec over what its inference alone allows.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pandas as pd

from servebench import paths, registry
from servebench.process import pinned
from servebench.registry import Service

CSV_HEADER = "iteration,tokenization_us,inference_us,total_us"


class CeilingError(RuntimeError):
    pass


def _parse(text: str, impl: str, payload: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text))
    expected = CSV_HEADER.split(",")
    if list(frame.columns) != expected:
        raise CeilingError(f"{impl} ceiling printed columns {list(frame.columns)}, not {expected}")
    frame.insert(0, "payload", payload)
    frame.insert(0, "impl", impl)
    return frame


def ceiling_command(
    provider: Service,
    model_dir: Path,
    payload_file: Path,
    iterations: int,
    warmup: int,
    threads: int,
) -> list[str]:
    """The provider's `ceiling` command from the registry, with the common arguments."""
    values = registry.command_values(provider)
    argv = [registry.render(part, values) for part in provider.ceiling]
    argv += ["--model-dir", str(model_dir), "--payload-file", str(payload_file)]
    argv += ["--iterations", str(iterations), "--warmup", str(warmup)]
    return [*argv, "--threads", str(threads)]


def measure(
    model_dir: Path,
    payloads: dict[str, Path],
    *,
    providers: dict[str, Service],
    iterations: int,
    warmup: int,
    threads: int,
    cpus: str | None,
) -> pd.DataFrame:
    """Each inference kind's ceiling in a fresh process pinned to `cpus`; one row per
    iteration (`impl` is the inference kind)."""
    frames = []
    for payload, payload_file in payloads.items():
        for impl, provider in providers.items():
            command = ceiling_command(
                provider, model_dir, payload_file, iterations, warmup, threads
            )
            output = run_tool(command, cpus, threads, f"{impl} ceiling for payload {payload}")
            frames.append(_parse(output, impl, payload))
    return pd.concat(frames, ignore_index=True)


def run_tool(command: list[str], cpus: str | None, threads: int, what: str) -> str:
    """An in-process timing tool's stdout: run pinned to `cpus`, one thread for everything
    but ONNX Runtime's intra-op pool, as the services run. Raises CeilingError naming `what`."""
    env = {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(threads), "USE_TORCH": "0"}
    result = subprocess.run(
        pinned(command, cpus),
        capture_output=True,
        text=True,
        cwd=paths.ROOT,
        env={**os.environ, **env},
        timeout=1800,
    )
    if result.returncode != 0:
        raise CeilingError(f"{what} failed: {result.stderr.strip()[-800:]}")
    return result.stdout
