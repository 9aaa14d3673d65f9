"""The replay: a workload's texts through the batched service's own queue and inference thread,
in process (no HTTP), so its HTTP results can be held against what its batching allows.

Run (the registry's `replay` command of python-batched; the harness runs it pinned to the
servers' CPUs, servebench.measure.inprocess):
    python -m servekit.replay --model-dir D --threads N --texts-file F --clients 1,50 \\
        --warmup W --iterations K [--max-batch-size ...]
The texts file is a JSON list of strings, in the order the load generator sends them. A pass:
`clients` closed-loop clients (coroutines on the event loop, as the service's handlers are)
each queue their next text of the list as soon as their previous answer is in, until every
text has been answered once; the batcher (servekit.batched.Batcher, the service's very queue,
schedule and runs) answers them. With one client that is every text alone, one at a time (the
batch-1 limit); with the load test's concurrency, the queue the service would see but for HTTP.
Per client count: one untimed pass over the first W texts, then K timed passes. CSV on stdout,
one row per timed pass: clients,iteration,texts,total_us. The batching flags and their
environment variables are the service's (MAX_BATCH_SIZE, ..., SCHEDULE).

With --serve the process stays up for the harness to time it inside its rounds (the registry's
"in-process tools" protocol, service/registry.yaml): after the warm-up it reads "C K" per stdin
line and answers with K rows at C clients (no header) and an empty line; "C K N" passes over
the first N texts only (the harness's untimed passes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from servekit.batch_ceiling import batch_sizes as positive_list
from servekit.batched import (
    Batcher,
    BatchSettings,
    FlagError,
    add_batch_flags,
    batch_settings,
    check_against_model,
)
from servekit.contract import Refusal

CSV_HEADER = "clients,iteration,texts,total_us"


def read_texts(path: Path) -> list[str]:
    """The texts file: a non-empty JSON list of non-empty strings; ValueError says what is wrong."""
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"texts file {path}: {exc}") from None
    if not isinstance(texts, list) or not texts:
        raise ValueError(f"texts file {path}: not a non-empty JSON list")
    if not all(isinstance(text, str) and text.strip() for text in texts):
        raise ValueError(f"texts file {path}: every item must be a non-empty string")
    return texts


async def one_pass(batcher: Batcher, texts: Sequence[str], clients: int) -> int:
    """Every text answered once by `clients` closed-loop clients; the pass's wall time in µs.
    A refused or failed request fails the pass (its Refusal propagates)."""
    pending = iter(texts)  # shared: each client takes the next text not yet sent

    async def client() -> None:
        for text in pending:
            await batcher.predict(text)

    started = time.perf_counter_ns()
    await asyncio.gather(*(client() for _ in range(min(clients, len(texts)))))
    return (time.perf_counter_ns() - started) // 1000


async def timed(batcher: Batcher, texts: Sequence[str], clients: int, passes: int) -> list[str]:
    """CSV rows without the header, one per timed pass."""
    rows = []
    for iteration in range(passes):
        total_us = await one_pass(batcher, texts, clients)
        rows.append(f"{clients},{iteration},{len(texts)},{total_us}")
    return rows


async def replay(
    batcher: Batcher,
    texts: list[str],
    levels: list[int],
    *,
    warmup: int,
    iterations: int,
    requests: IO[str] | None,
    out: IO[str],
) -> None:
    """Warm-up at every client count, then the timed passes: `iterations` at each level, or,
    with `requests` (--serve), those each "C K" line asks for."""
    batcher.start()
    try:
        for clients in levels:
            await one_pass(batcher, texts[: max(1, warmup)], clients)
        if requests is None:
            rows = [CSV_HEADER]
            for clients in levels:
                rows += await timed(batcher, texts, clients, iterations)
            out.write("\n".join(rows) + "\n")
            return
        while line := await asyncio.to_thread(requests.readline):
            clients, passes, *count = (max(1, int(part)) for part in line.split())
            chosen = texts[: count[0]] if count else texts
            out.write("\n".join(await timed(batcher, chosen, clients, passes)) + "\n\n")
            out.flush()
    finally:
        await batcher.stop()


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, BatchSettings]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--texts-file", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clients", type=positive_list, default=[1, 50])
    parser.add_argument("--warmup", type=int, default=50, help="texts of the untimed pass")
    parser.add_argument("--iterations", type=int, default=3, help="timed passes per level")
    parser.add_argument("--serve", action="store_true", help='"C K" lines on stdin')
    add_batch_flags(parser)
    args = parser.parse_args(argv)
    settings = batch_settings(args)
    # More clients than the queue holds would be refused (503), which fails the pass.
    if max(args.clients) > settings.max_queue:
        raise FlagError(
            f"--clients: {max(args.clients)} clients exceed --max-queue {settings.max_queue}"
        )
    return args, settings


def main(argv: list[str] | None = None) -> int:
    try:
        args, settings = parse_args(argv)
        texts = read_texts(args.texts_file)
    except (FlagError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # torch is installed for the exporter only; keep transformers from importing it here.
    os.environ.setdefault("USE_TORCH", "0")
    from servekit.inference import Classifier, ModelDirError

    try:
        classifier = Classifier(args.model_dir, threads=args.threads)
        check_against_model(settings, classifier)
    except (ModelDirError, FlagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    batcher = Batcher(classifier, settings)
    requests = sys.stdin if args.serve else None
    try:
        asyncio.run(
            replay(
                batcher,
                texts,
                args.clients,
                warmup=args.warmup,
                iterations=args.iterations,
                requests=requests,
                out=sys.stdout,
            )
        )
    except Refusal as refusal:  # a limit is only a limit if every text was answered
        print(f"error: a text was answered {refusal.status}: {refusal.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
