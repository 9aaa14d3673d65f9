"""The Python in-process ceiling: `Classifier.classify` in a loop, with no HTTP around it.

Run (the registry's `ceiling` command of the `python` inference kind; the harness runs it
pinned to the servers' CPUs, servebench.measure.ceiling):
    python -m servekit.ceiling --model-dir DIR --payload-file F --iterations N --warmup W \\
        --threads T
W untimed, then N timed classifications of the payload file's text (stripped). CSV on stdout,
the format `rust-native bench` prints: iteration,tokenization_us,inference_us,total_us.

With --serve the process stays up for the harness to time it inside its rounds (the registry's
"in-process tools" protocol, service/registry.yaml): after the warm-up it reads an iteration
count K per stdin line and answers each with K rows (no header) and an empty line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from servekit.tokenize import TOKENIZER_APIS

if TYPE_CHECKING:
    from servekit.inference import Prediction

CSV_HEADER = "iteration,tokenization_us,inference_us,total_us"


class Classifies(Protocol):
    def classify(self, text: str) -> Prediction: ...


def timed(classifier: Classifies, text: str, iterations: int) -> list[str]:
    """CSV rows without the header: one per timed `classify` call."""
    rows = []
    for iteration in range(iterations):
        started = time.perf_counter_ns()
        prediction = classifier.classify(text)
        total = (time.perf_counter_ns() - started) // 1000
        rows.append(f"{iteration},{prediction.tokenization_us},{prediction.inference_us},{total}")
    return rows


def measure(classifier: Classifies, text: str, iterations: int, warmup: int) -> list[str]:
    """CSV rows (header first): one per timed `classify` call, after `warmup` untimed."""
    for _ in range(warmup):
        classifier.classify(text)
    return [CSV_HEADER, *timed(classifier, text, iterations)]


def serve(
    classifier: Classifies, text: str, warmup: int, lines: Iterable[str], out: IO[str]
) -> None:
    """The --serve loop: `warmup` untimed calls, then per line K, K rows and an empty line."""
    for _ in range(warmup):
        classifier.classify(text)
    for line in lines:
        rows = timed(classifier, text, max(1, int(line)))
        out.write("\n".join(rows) + "\n\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Python in-process ceiling (CSV on stdout)")
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--payload-file", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help="iteration counts on stdin")
    # The service's own front end (CONTRACT.md "Command line"): a loop bounds only the
    # services that tokenize as it does.
    parser.add_argument("--tokenizer", choices=TOKENIZER_APIS, default=TOKENIZER_APIS[0])
    args = parser.parse_args(argv)
    text = args.payload_file.read_text().strip()
    # torch is installed for the exporter only; keep transformers from importing it here.
    os.environ.setdefault("USE_TORCH", "0")
    from servekit.inference import Classifier

    classifier = Classifier(args.model_dir, threads=args.threads, tokenizer_api=args.tokenizer)
    if args.serve:
        serve(classifier, text, args.warmup, sys.stdin, sys.stdout)
        return 0
    rows = measure(classifier, text, args.iterations, args.warmup)
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
