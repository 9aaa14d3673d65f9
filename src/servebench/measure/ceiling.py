"""The in-process ceiling's command: tokenize + ONNX Runtime inference with no HTTP around it.

One ceiling per `inference` kind of the registry, measured by the command of the registry
entry that declares `ceiling`, which lives beside its service: Python's is
`python -m servekit.ceiling` (the services' own `Classifier`), Rust's `rust-native bench`.
The load test runs each as a resident tool inside the rounds (measure/inprocess.py), pinned to
the servers' CPU set with the same thread settings, and reads its CSV rows
(iteration,tokenization_us,inference_us,total_us), so a service's efficiency is its
requests/sec over what its inference alone allows, paired per round.
"""

from __future__ import annotations

from pathlib import Path

from servebench import registry
from servebench.registry import Service

CSV_HEADER = "iteration,tokenization_us,inference_us,total_us"


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
