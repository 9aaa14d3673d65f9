"""The batch ceiling: `Classifier.classify_batch` in a loop, no HTTP, one batch size at a time.

Run (the registry's `batch_ceiling` command of python-batched; the harness runs it pinned to
the servers' CPUs, servebench.measure.batch_ceiling):
    python -m servekit.batch_ceiling --model-dir D --threads N --payload-file F \\
        --iterations K --warmup W --batch-sizes 1,2,4,8,16,32
For each batch size b: W untimed, then K timed calls of classify_batch([text] * b), the very
call the batched service's inference thread makes. CSV on stdout, one row per timed call:
batch_size,iteration,tokenization_us,inference_us,total_us (inference summed over the call's
sub-batches). The payload file is a request body {"inputs": ...}, read with the service's
own body parser, or plain text. --max-batch-tokens and --max-padding default to the service's
MAX_BATCH_TOKENS and MAX_PADDING (else service/batching_policy.json's).

With --serve the process stays up for the harness to time it inside its rounds (the registry's
"in-process tools" protocol, service/registry.yaml): after the warm-up of every batch size it
reads "B K" per stdin line and answers with K rows at batch size B (no header) and an empty line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from servekit.contract import BadRequest, parse_body
from servekit.plan import Limits
from servekit.policy import DEFAULTS

if TYPE_CHECKING:
    from servekit.inference import Classifier

CSV_HEADER = "batch_size,iteration,tokenization_us,inference_us,total_us"


def payload_text(raw: bytes) -> str:
    """The text of a payload file: a JSON object body goes through the service's parser."""
    if raw.lstrip().startswith(b"{"):
        return parse_body(raw)
    # Plain text, stripped as the unbatched ceiling (servekit.ceiling) strips it.
    text = raw.decode("utf-8").strip()
    if not text:
        raise BadRequest(400, "no text")
    return text


def batch_sizes(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {value}"
        ) from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be at least 1: {value}")
    return sizes


@dataclass(frozen=True)
class BatchPath:
    """The batched service's batch call on one text, as its inference thread makes it."""

    classifier: Classifier
    text: str
    limits: Limits

    def warm(self, sizes: list[int], warmup: int) -> None:
        for size in sizes:
            for _ in range(warmup):
                self.classifier.classify_batch([self.text] * size, self.limits)

    def timed(self, size: int, iterations: int) -> list[str]:
        """CSV rows without the header: one per timed classify_batch call of `size` texts."""
        texts, rows = [self.text] * size, []
        for iteration in range(iterations):
            started = time.perf_counter_ns()
            answers = self.classifier.classify_batch(texts, self.limits)
            total_us = (time.perf_counter_ns() - started) // 1000
            # Each sub-batch's run counts once, however many rows shared it.
            runs = {answer.sub_batch: answer.inference_us for answer in answers}
            tokenization_us = answers[0].tokenization_us
            rows.append(f"{size},{iteration},{tokenization_us},{sum(runs.values())},{total_us}")
        return rows


def measure(path: BatchPath, sizes: list[int], iterations: int, warmup: int) -> list[str]:
    """CSV rows (header first): per batch size, `warmup` untimed then `iterations` timed calls."""
    rows = [CSV_HEADER]
    for size in sizes:
        path.warm([size], warmup)
        rows += path.timed(size, iterations)
    return rows


def serve(
    path: BatchPath, sizes: list[int], warmup: int, lines: Iterable[str], out: IO[str]
) -> None:
    """The --serve loop: every size warmed up, then per line "B K", K rows and an empty line."""
    path.warm(sizes, warmup)
    for line in lines:
        size, iterations = (int(part) for part in line.split())
        out.write("\n".join(path.timed(max(1, size), max(1, iterations))) + "\n\n")
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--payload-file", type=Path, required=True)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-sizes", type=batch_sizes, default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--serve", action="store_true", help='"B K" lines on stdin')
    # The service's environment variables as defaults, so the ceiling cuts sub-batches as the
    # service under study does.
    env = os.environ.get
    parser.add_argument(
        "--max-batch-tokens",
        type=int,
        default=int(env("MAX_BATCH_TOKENS", DEFAULTS["max_batch_tokens"])),
    )
    parser.add_argument(
        "--max-padding", type=float, default=float(env("MAX_PADDING", DEFAULTS["max_padding"]))
    )
    args = parser.parse_args(argv)
    try:
        text = payload_text(args.payload_file.read_bytes())
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: payload file {args.payload_file}: {exc}", file=sys.stderr)
        return 2
    except BadRequest as bad:
        print(f"error: payload file {args.payload_file}: {bad.message}", file=sys.stderr)
        return 2
    # torch is installed for the exporter only; keep transformers from importing it here.
    os.environ.setdefault("USE_TORCH", "0")
    from servekit.inference import Classifier, ModelDirError

    try:
        classifier = Classifier(args.model_dir, threads=args.threads)
    except ModelDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # b copies of one text in one run, as far as the service's token and padding limits allow:
    # the largest size asked for is the run's size limit here, not the service's own.
    limits = Limits(
        max_batch_size=max(args.batch_sizes),
        max_batch_tokens=args.max_batch_tokens,
        max_padding=args.max_padding,
        max_wait_ms=DEFAULTS["max_wait_ms"],
    )
    path = BatchPath(classifier, text, limits)
    if args.serve:
        serve(path, args.batch_sizes, args.warmup, sys.stdin, sys.stdout)
        return 0
    rows = measure(path, args.batch_sizes, args.iterations, args.warmup)
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
