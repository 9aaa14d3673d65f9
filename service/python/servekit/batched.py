"""The batched Python service: the Python service's routes with dynamic batching behind them.

Run: python service/python-batched/app.py --model-dir data/models/minilm-sentiment --port 8080
Handlers queue their text and await a future; one inference thread, which alone uses the
ONNX Runtime session, forms batches (service/CONTRACT.md, "Batched services", steps 1-2),
classifies each batch with `inference.Classifier.classify_batch` (steps 3-6) and resolves
the futures on the event loop. Routes and checks are servekit.routes', command line and server
servekit.server's, as the Python service's are, so both Python services refuse and answer
alike; the flags' defaults are service/batching_policy.json's (servekit.policy).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI

from servekit import routes, server
from servekit.contract import Refusal
from servekit.inference import BatchPrediction, Classifier
from servekit.policy import BatchSettings

log = logging.getLogger("servebench")

# SIGTERM's 5 s (CONTRACT.md): uvicorn waits up to GRACEFUL_S for the handlers, which wait
# for the queue to drain, then cancels those left; the inference thread then gets THREAD_JOIN_S
# to finish the batch it is in, whose requests are already cancelled (so it is not awaited
# longer). 0.1 s of uvicorn's own + 4 + 0.25 leaves room for the process to end.
GRACEFUL_S = 4.0
THREAD_JOIN_S = 0.25
SHUTTING_DOWN = "service shutting down; retry later"


class BatchClassifies(Protocol):
    """What the batcher needs: inference.Classifier, or a stand-in in the tests."""

    def classify_batch(
        self, texts: Sequence[str], max_batch_tokens: int, max_padding: float
    ) -> list[BatchPrediction]: ...


@dataclass(frozen=True)
class Job:
    text: str
    future: asyncio.Future[server.Reply]
    queued_ns: int


class Batcher:
    """The bounded queue and the one inference thread that drains it batch by batch."""

    def __init__(self, classifier: BatchClassifies, settings: BatchSettings) -> None:
        self.classifier = classifier
        self.settings = settings
        # Unbounded underneath: the event loop is the only producer, so checking the size
        # before putting cannot overfill it, and the stop marker can always be put.
        self.queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.full_message = f"queue full: {settings.max_queue} requests waiting; retry later"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the inference thread; call on the event loop that awaits the answers."""
        self.loop = asyncio.get_running_loop()
        # A daemon, so a batch still running when shutdown gives up cannot hold the process.
        self.thread = threading.Thread(target=self.run, name="inference", daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        """Lets the thread answer everything queued, then waits (bounded) for it to end."""
        if self.thread is None:
            return
        self.queue.put(None)
        await asyncio.to_thread(self.thread.join, THREAD_JOIN_S)
        if self.thread.is_alive():
            log.warning("inference thread still busy at shutdown; exiting without it")

    async def predict(self, text: str) -> server.Reply:
        """The routes' `Predict`: queue the text and await its answer."""
        if self.loop is None:
            raise RuntimeError("Batcher.start() was not called")
        if self.queue.qsize() >= self.settings.max_queue:
            raise Refusal(503, self.full_message, {"Retry-After": "1"})
        future: asyncio.Future[server.Reply] = self.loop.create_future()
        self.queue.put(Job(text, future, time.perf_counter_ns()))
        try:
            return await future
        except asyncio.CancelledError:
            # uvicorn cancels the handlers still waiting when its graceful shutdown time is
            # up (more queued than GRACEFUL_S can answer): a JSON 503 instead of its plain-text 500
            # and a traceback per request. Nothing else cancels a handler here.
            raise Refusal(503, SHUTTING_DOWN, {"Retry-After": "1"}) from None

    def run(self) -> None:
        """The inference thread: batches until the stop marker, then until the queue is empty."""
        stopping = False
        while True:
            try:
                first = self.queue.get(block=not stopping)
            except queue.Empty:
                return
            if first is None:
                stopping = True
                continue
            taken = [(first, time.perf_counter_ns())]
            stopping = self.gather(taken, stopping)
            if not self.answer(taken):
                return

    def gather(self, taken: list[tuple[Job, int]], stopping: bool) -> bool:
        """Steps 1-2: add queued jobs, oldest first, to `taken` (which holds the first), waiting
        up to max-batch-delay-us after the first unless stopping. Returns `stopping`."""
        settings = self.settings
        deadline = taken[0][1] + settings.max_batch_delay_us * 1000
        while len(taken) < settings.max_batch_size:
            wait_s = (deadline - time.perf_counter_ns()) / 1e9
            try:
                if wait_s > 0 and not stopping:
                    job = self.queue.get(timeout=wait_s)
                else:
                    job = self.queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stopping = True  # no more arrivals worth waiting for
                continue
            taken.append((job, time.perf_counter_ns()))
        return stopping

    def answer(self, taken: list[tuple[Job, int]]) -> bool:
        """Steps 3-6, then the futures resolved on the loop; False once the loop is gone."""
        # Jobs whose handler was cancelled (shutdown timeout) are not worth a run. (done() is
        # read off the loop's thread: a stale answer costs one wasted row, nothing more.)
        taken[:] = [(job, taken_ns) for job, taken_ns in taken if not job.future.done()]
        if not taken:
            return True
        outcome: list[BatchPrediction] | None = None
        try:
            outcome = self.classifier.classify_batch(
                [job.text for job, _ in taken],
                max_batch_tokens=self.settings.max_batch_tokens,
                max_padding=self.settings.max_padding,
            )
            if len(outcome) != len(taken):
                raise RuntimeError(f"{len(outcome)} answers for {len(taken)} texts")
        except Exception as exc:
            # One line, never the text or a traceback: request bodies are not logged.
            log.error("internal error in a batch of %d: %s", len(taken), type(exc).__name__)
            outcome = None
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(resolve, taken, outcome)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return False
        return True


def resolve(taken: list[tuple[Job, int]], outcome: list[BatchPrediction] | None) -> None:
    """On the event loop: each job's answer, or 500 for every job of a failed batch."""
    for index, (job, taken_ns) in enumerate(taken):
        if job.future.done():  # its handler was cancelled (shutdown timeout)
            continue
        if outcome is None:
            job.future.set_exception(Refusal(500, "internal error"))
            continue
        prediction = outcome[index]
        headers = {
            "x-batch-size": str(prediction.batch_size),
            "x-queue-time": str((taken_ns - job.queued_ns) // 1000),
        }
        job.future.set_result(server.Reply(prediction, headers))


def create_app(classifier: BatchClassifies, settings: BatchSettings) -> FastAPI:
    batcher = Batcher(classifier, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            # uvicorn has stopped accepting and waited for in-flight handlers; answer what
            # is still queued (nothing, unless that wait timed out) and end the thread.
            await batcher.stop()

    app = routes.build_app(
        batcher.predict, title="servebench python batched service", lifespan=lifespan
    )
    app.state.batcher = batcher  # for the tests: its queue and thread
    return app


class FlagError(ValueError):
    """A batching flag out of range: the message names the flag (one line)."""


def integer_flag(value: str, flag: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise FlagError(f"{flag} must be an integer, got {value!r}") from None
    if number < minimum:
        raise FlagError(f"{flag} must be at least {minimum}, got {number}")
    return number


def padding_flag(value: str, flag: str) -> float:
    try:
        share = float(value)
    except ValueError:
        raise FlagError(f"{flag} must be a number, got {value!r}") from None
    if not 0 <= share < 1:  # also refuses nan
        raise FlagError(f"{flag} must be at least 0 and below 1, got {value}")
    return share


# flag, environment variable, default (as the environment would give it)
BATCH_FLAGS = (
    ("--max-batch-size", "MAX_BATCH_SIZE", str(BatchSettings.max_batch_size)),
    ("--max-batch-tokens", "MAX_BATCH_TOKENS", str(BatchSettings.max_batch_tokens)),
    ("--max-batch-delay-us", "MAX_BATCH_DELAY_US", str(BatchSettings.max_batch_delay_us)),
    ("--max-queue", "MAX_QUEUE", str(BatchSettings.max_queue)),
    ("--max-padding", "MAX_PADDING", str(BatchSettings.max_padding)),
)


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, BatchSettings]:
    """The common flags and the batching flags; FlagError for a value out of range."""
    parser = server.service_parser(__doc__.splitlines()[0])
    for flag, variable, default in BATCH_FLAGS:
        # Strings, checked below: argparse's own type errors print the usage on extra lines.
        parser.add_argument(flag, default=os.environ.get(variable, default), help=f"env {variable}")
    args = server.parse_service_args(parser, argv)
    if args.workers != 1:
        raise FlagError(
            f"--workers (WORKERS) must be 1 for the batched service (one queue, one inference "
            f"thread), got {args.workers}"
        )
    named = {flag: f"{flag} ({variable})" for flag, variable, _ in BATCH_FLAGS}
    settings = BatchSettings(
        max_batch_size=integer_flag(args.max_batch_size, named["--max-batch-size"], 1),
        max_batch_tokens=integer_flag(args.max_batch_tokens, named["--max-batch-tokens"], 1),
        max_batch_delay_us=integer_flag(args.max_batch_delay_us, named["--max-batch-delay-us"], 0),
        max_queue=integer_flag(args.max_queue, named["--max-queue"], 1),
        max_padding=padding_flag(args.max_padding, named["--max-padding"]),
    )
    return args, settings


def check_against_model(settings: BatchSettings, classifier: Classifier) -> None:
    """The token budget must hold one row of the longest input the model takes."""
    max_length = classifier.info.max_length
    if settings.max_batch_tokens < max_length:
        raise FlagError(
            f"--max-batch-tokens (MAX_BATCH_TOKENS) must be at least the model's max_length "
            f"{max_length}, got {settings.max_batch_tokens}"
        )


def main(argv: list[str] | None = None) -> int:
    try:
        args, settings = parse_args(argv)
    except FlagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    classifier = server.load_classifier(args)
    if classifier is None:
        return 2
    try:
        check_against_model(settings, classifier)
    except FlagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return server.serve(create_app(classifier, settings), args, graceful_shutdown_s=GRACEFUL_S)
