"""The Python in-process ceiling: `Classifier.classify` in a loop, with no HTTP around it.

Run (the registry's `ceiling` command of the `python` inference kind; the harness runs it
pinned to the servers' CPUs, servebench.measure.ceiling):
    python -m servekit.ceiling --model-dir DIR --payload-file F --iterations N --warmup W \\
        --threads T
W untimed, then N timed classifications of the payload file's text (stripped). CSV on stdout,
the format `rust-native bench` prints: iteration,tokenization_us,inference_us,total_us.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from servekit.inference import Prediction

CSV_HEADER = "iteration,tokenization_us,inference_us,total_us"


class Classifies(Protocol):
    def classify(self, text: str) -> Prediction: ...


def measure(classifier: Classifies, text: str, iterations: int, warmup: int) -> list[str]:
    """CSV rows (header first): one per timed `classify` call."""
    for _ in range(warmup):
        classifier.classify(text)
    rows = [CSV_HEADER]
    for iteration in range(iterations):
        started = time.perf_counter_ns()
        prediction = classifier.classify(text)
        total = (time.perf_counter_ns() - started) // 1000
        rows.append(f"{iteration},{prediction.tokenization_us},{prediction.inference_us},{total}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Python in-process ceiling (CSV on stdout)")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--payload-file", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    text = args.payload_file.read_text().strip()
    # torch is installed for the exporter only; keep transformers from importing it here.
    os.environ.setdefault("USE_TORCH", "0")
    from servekit.inference import Classifier

    classifier = Classifier(args.model_dir, threads=args.threads)
    rows = measure(classifier, text, args.iterations, args.warmup)
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
