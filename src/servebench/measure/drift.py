"""The drift monitor: a fixed in-process probe, re-measured between rounds.

A shared VM's speed moves during a run (another tenant, thermal or frequency changes). Paired
ratios cancel that drift (analysis/paired.py); the probe shows the reader how large it was.
It is the seed sentence classified in a loop by the Python service's own inference code on
the fp32 model, pinned to the servers' CPUs, in one process that stays loaded for the whole
run, so a probe costs a fraction of a second and measures the machine, not a start-up.

Run as a module it is that process (a resident tool, measure/resident.py): it reads an
iteration count per line on stdin and answers each with the median microseconds per
classification and an empty line:
    python -m servebench.measure.drift --model-dir DIR --payload-file F --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import IO, Any, Protocol

from servebench.measure.resident import Resident, ResidentError

#: Classifications per probe: ~0.1-0.4 s with fp32 MiniLM, enough for a stable median.
PROBE_ITERATIONS = 40
WARMUP = 10


class DriftError(ResidentError):
    pass


class DriftProbe(Resident):
    """The probe process (a context manager); :meth:`measure` runs one probe."""

    def __init__(
        self, model_dir: Path, payload_file: Path, *, threads: int, cpus: str | None
    ) -> None:
        command = [
            sys.executable, "-m", "servebench.measure.drift", "--model-dir", str(model_dir),
            "--payload-file", str(payload_file), "--threads", str(threads),
        ]  # fmt: skip
        super().__init__("the drift probe", command, threads=threads, cpus=cpus)
        self.probes = 0

    def measure(self, iterations: int = PROBE_ITERATIONS) -> dict[str, Any]:
        """One probe: ``seq`` (0, 1, ...), ``elapsed_s`` since the probe process started,
        ``probe_us`` (median per classification) and ``iterations``."""
        try:
            answer = self.ask(str(iterations))
        except ResidentError as error:
            raise DriftError(str(error)) from None
        self.probes += 1
        return {
            "seq": self.probes - 1,
            "elapsed_s": time.monotonic() - self.started,
            "probe_us": float(answer[0]),
            "iterations": iterations,
        }


class Classifies(Protocol):
    def classify(self, text: str) -> Any: ...


def serve(model_dir: Path, text: str, threads: int, lines: IO[str], out: IO[str]) -> None:
    """The probe loop (`probe`) on the Python services' own Classifier."""
    from servekit.inference import Classifier

    probe(Classifier(model_dir, threads=threads), text, lines, out)


def probe(classifier: Classifies, text: str, lines: IO[str], out: IO[str]) -> None:
    """Answer each iteration count read from `lines` with the median µs per classification."""
    for _ in range(WARMUP):
        classifier.classify(text)
    for line in lines:
        count = max(1, int(line))
        times = []
        for _ in range(count):
            started = time.perf_counter_ns()
            classifier.classify(text)
            times.append((time.perf_counter_ns() - started) / 1000)
        out.write(f"{statistics.median(times):.1f}\n\n")  # an answer ends with an empty line
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the drift probe (iteration counts on stdin)")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--payload-file", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    text = args.payload_file.read_text().strip()
    serve(args.model_dir, text, args.threads, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
