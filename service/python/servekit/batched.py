"""The batched Python service: the Python service's routes with dynamic batching behind them.

Run: python service/python-batched/app.py --model-dir data/models/minilm-sentiment --port 8080
Handlers queue their text and await a future; one inference thread, which alone uses the ONNX
Runtime session, tokenizes what was queued since it last chose, chooses the next run from
everything waiting (servekit.plan: shortest first, with aging), runs it and resolves its
futures on the event loop at once (service/CONTRACT.md, "Batched services"). Routes and checks
are servekit.routes', command line and server servekit.server's, as the Python service's are,
so both Python services refuse and answer alike; the flags' defaults are
service/batching_policy.json's (servekit.policy).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from fastapi import FastAPI

from servekit import routes, server
from servekit.contract import Refusal
from servekit.inference import BatchPrediction, Classifier, Rows
from servekit.plan import next_run
from servekit.policy import SCHEDULES, BatchSettings

log = logging.getLogger("servebench")

# SIGTERM's 5 s (CONTRACT.md): uvicorn waits up to GRACEFUL_S for the handlers, which wait
# for the queue to drain, then cancels those left; the inference thread then gets THREAD_JOIN_S
# to finish the run it is in, whose requests are already cancelled (so it is not awaited
# longer). 0.1 s of uvicorn's own + 4 + 0.25 leaves room for the process to end.
GRACEFUL_S = 4.0
THREAD_JOIN_S = 0.25
SHUTTING_DOWN = "service shutting down; retry later"


class BatchClassifies(Protocol):
    """What the batcher needs: inference.Classifier, or a stand-in in the tests."""

    def encode_rows(self, texts: Sequence[str]) -> Rows: ...

    def run_rows(self, rows: Rows, group: Sequence[int]) -> tuple[list[tuple[str, float]], int]: ...


class RunCounts(NamedTuple):
    """What the successful runs held since start: the body of `GET /stats` (CONTRACT.md)."""

    runs: int = 0
    rows: int = 0
    tokens: int = 0  # real tokens: each row's length, summed
    positions: int = 0  # rows x longest row, summed: tokens plus padding

    def plus_run(self, lengths: Sequence[int]) -> RunCounts:
        """These counts and one run of rows of `lengths` (each padded to the longest)."""
        return RunCounts(
            self.runs + 1,
            self.rows + len(lengths),
            self.tokens + sum(lengths),
            self.positions + len(lengths) * max(lengths, default=0),
        )


@dataclass
class Job:
    """A queued request: its text, its future, when it came; once tokenized (by the inference
    thread), its row per model input, its length and the tokenizer call's duration."""

    text: str
    future: asyncio.Future[server.Reply]
    queued_ns: int
    row: Rows | None = None
    length: int = 0
    tokenization_us: int = 0


class Batcher:
    """The bounded queue and the one inference thread that runs it, one run at a time."""

    def __init__(self, classifier: BatchClassifies, settings: BatchSettings) -> None:
        self.classifier = classifier
        self.settings = settings
        self.limits = settings.limits
        # Arrival order. Appended on the event loop, chosen from by the inference thread,
        # both under `changed`'s lock; the thread holds it only to choose, never to run.
        self.waiting: list[Job] = []
        self.changed = threading.Condition()
        # The batch schedule's taken batch, whose runs are made before anything newer is looked
        # at: the inference thread's alone, and not counted as waiting (max-queue).
        self.batch: list[Job] = []
        self.stopping = False
        self.full_message = f"queue full: {settings.max_queue} requests waiting; retry later"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        # Written by the inference thread alone, as a whole new tuple (one atomic rebinding),
        # so the event loop reads the four counts of one moment without a lock.
        self.counts = RunCounts()

    def start(self) -> None:
        """Starts the inference thread; call on the event loop that awaits the answers."""
        self.loop = asyncio.get_running_loop()
        # A daemon, so a run still going when shutdown gives up cannot hold the process.
        self.thread = threading.Thread(target=self.run, name="inference", daemon=True)
        self.thread.start()

    async def stop(self) -> None:
        """Lets the thread answer everything queued, then waits (bounded) for it to end."""
        if self.thread is None:
            return
        with self.changed:
            self.stopping = True
            self.changed.notify()
        await asyncio.to_thread(self.thread.join, THREAD_JOIN_S)
        if self.thread.is_alive():
            log.warning("inference thread still busy at shutdown; exiting without it")

    async def predict(self, text: str) -> server.Reply:
        """The routes' `Predict`: queue the text and await its answer."""
        if self.loop is None:
            raise RuntimeError("Batcher.start() was not called")
        if len(self.waiting) >= self.settings.max_queue:
            raise Refusal(503, self.full_message, {"Retry-After": "1"})
        future: asyncio.Future[server.Reply] = self.loop.create_future()
        job = Job(text, future, time.perf_counter_ns())
        with self.changed:
            self.waiting.append(job)
            self.changed.notify()
        try:
            return await future
        except asyncio.CancelledError:
            # uvicorn cancels the handlers still waiting when its graceful shutdown time is
            # up (more queued than GRACEFUL_S can answer): a JSON 503 instead of its plain-text 500
            # and a traceback per request. The routes cancel it too when the client has gone,
            # and then nobody reads the answer.
            raise Refusal(503, SHUTTING_DOWN, {"Retry-After": "1"}) from None

    def run(self) -> None:
        """The inference thread: one run at a time until stopped and nothing waits."""
        while True:
            taken = self.take()
            if taken is None:
                return
            if taken and not self.answer(taken):
                return

    def take(self) -> list[tuple[Job, int]] | None:
        """Steps 1-3: waits for a request (and with max-batch-delay-us, for company), drops
        those whose handler has gone, tokenizes the new ones and takes the next run; None once
        stopped and drained."""
        settings = self.settings
        if self.batch:
            return self.next_of_batch()
        with self.changed:
            while not self.waiting:
                if self.stopping:
                    return None
                self.changed.wait()
            if settings.max_batch_delay_us and not self.stopping:
                deadline = time.monotonic() + settings.max_batch_delay_us / 1e6
                while len(self.waiting) < settings.max_batch_size and not self.stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.changed.wait(left)
            # A cancelled future: its handler is gone (client away, or shutdown timeout). done()
            # is read off the loop's thread: a stale answer costs one wasted row, nothing more.
            self.waiting = [job for job in self.waiting if not job.future.done()]
            if settings.schedule == "batch":
                fresh = self.waiting[: settings.max_batch_size]
                self.waiting = self.waiting[settings.max_batch_size :]
            else:
                fresh = [job for job in self.waiting if job.row is None]
        # Outside the lock, so handlers keep queueing meanwhile (only this thread removes).
        failed = self.tokenize(fresh)
        if settings.schedule == "batch":
            self.batch = without(fresh, failed)
            return self.next_of_batch()
        with self.changed:
            self.waiting = without(self.waiting, failed)
            # Texts queued while the others were tokenized wait for the next choice.
            taken = self.choose([job for job in self.waiting if job.row is not None])
            self.waiting = without(self.waiting, [job for job, _ in taken])
        return taken

    def next_of_batch(self) -> list[tuple[Job, int]]:
        """The batch schedule's next run: the shortest of the taken batch (its waits do not
        matter: the whole batch runs before anything newer)."""
        self.batch = [job for job in self.batch if not job.future.done()]
        taken = self.choose(self.batch, aging=False)
        self.batch = without(self.batch, [job for job, _ in taken])
        return taken

    def choose(self, jobs: list[Job], aging: bool = True) -> list[tuple[Job, int]]:
        """Step 3 among `jobs` (tokenized): the next run, each job with the time it was chosen."""
        now = time.perf_counter_ns()
        waited = [(now - job.queued_ns) // 1000 if aging else 0 for job in jobs]
        chosen = next_run([job.length for job in jobs], waited, self.limits)
        return [(jobs[index], now) for index in chosen]

    def tokenize(self, jobs: list[Job]) -> list[Job]:
        """Step 1 for `jobs`, in one tokenizer call (a call per text costs the seed's wrapper
        more than the batch); the jobs it fails for, answered 500."""
        if not jobs:
            return []
        started = time.perf_counter_ns()
        try:
            rows = self.classifier.encode_rows([job.text for job in jobs])
        except Exception as exc:
            log.error("internal error tokenizing %d texts: %s", len(jobs), type(exc).__name__)
            self.resolve_soon([(job, 0) for job in jobs], None, 0)
            return jobs
        tokenization_us = (time.perf_counter_ns() - started) // 1000
        for index, job in enumerate(jobs):
            job.row = {name: [ids[index]] for name, ids in rows.items()}
            job.length = len(next(iter(rows.values()))[index])
            job.tokenization_us = tokenization_us
        return []

    def resolve_soon(
        self,
        taken: list[tuple[Job, int]],
        outcome: list[tuple[str, float]] | None,
        inference_us: int,
    ) -> bool:
        """`resolve` on the event loop; False once the loop is gone."""
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(resolve, taken, outcome, inference_us)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            return False
        return True

    def answer(self, taken: list[tuple[Job, int]]) -> bool:
        """Steps 4-5: one run, its futures resolved on the loop; False once the loop is gone."""
        rows: Rows = {}
        for job, _ in taken:
            assert job.row is not None  # take() chooses tokenized jobs only
            for name, ids in job.row.items():
                rows.setdefault(name, []).append(ids[0])
        outcome: list[tuple[str, float]] | None = None
        inference_us = 0
        try:
            outcome, inference_us = self.classifier.run_rows(rows, range(len(taken)))
            if len(outcome) != len(taken):
                raise RuntimeError(f"{len(outcome)} answers for {len(taken)} texts")
        except Exception as exc:
            # One line, never the text or a traceback: request bodies are not logged.
            log.error("internal error in a run of %d: %s", len(taken), type(exc).__name__)
            outcome = None
        if outcome is not None:
            # Before the answers go out: a client holding them finds their run counted.
            self.counts = self.counts.plus_run([job.length for job, _ in taken])
        return self.resolve_soon(taken, outcome, inference_us)


def without(jobs: list[Job], gone: list[Job]) -> list[Job]:
    """`jobs` less those in `gone` (by identity: jobs are not values), in their order."""
    ids = {id(job) for job in gone}
    return [job for job in jobs if id(job) not in ids]


def resolve(
    taken: list[tuple[Job, int]], outcome: list[tuple[str, float]] | None, inference_us: int
) -> None:
    """On the event loop: each job's answer, or 500 for every job of a failed run."""
    for index, (job, taken_ns) in enumerate(taken):
        if job.future.done():  # its handler was cancelled meanwhile
            continue
        if outcome is None:
            job.future.set_exception(Refusal(500, "internal error"))
            continue
        label, score = outcome[index]
        prediction = BatchPrediction(
            label=label,
            score=score,
            tokenization_us=job.tokenization_us,
            inference_us=inference_us,
            batch_size=len(taken),
            sub_batch=0,
        )
        headers = {
            "x-batch-size": str(len(taken)),
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
        batcher.predict,
        title="servebench python batched service",
        lifespan=lifespan,
        watch_client=True,
        run_counts=lambda: batcher.counts._asdict(),
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


def schedule_flag(value: str, flag: str) -> str:
    if value not in SCHEDULES:
        raise FlagError(f"{flag} must be one of {', '.join(SCHEDULES)}, got {value!r}")
    return value


# flag, environment variable, default (as the environment would give it)
BATCH_FLAGS = (
    ("--max-batch-size", "MAX_BATCH_SIZE", str(BatchSettings.max_batch_size)),
    ("--max-batch-tokens", "MAX_BATCH_TOKENS", str(BatchSettings.max_batch_tokens)),
    ("--max-batch-delay-us", "MAX_BATCH_DELAY_US", str(BatchSettings.max_batch_delay_us)),
    ("--max-queue", "MAX_QUEUE", str(BatchSettings.max_queue)),
    ("--max-padding", "MAX_PADDING", str(BatchSettings.max_padding)),
    ("--max-wait-ms", "MAX_WAIT_MS", str(BatchSettings.max_wait_ms)),
    ("--schedule", "SCHEDULE", BatchSettings.schedule),
)


def add_batch_flags(parser: argparse.ArgumentParser) -> None:
    """The batching flags, as strings (checked by :func:`batch_settings`: argparse's own type
    errors print the usage on extra lines), each defaulting to its environment variable."""
    for flag, variable, default in BATCH_FLAGS:
        parser.add_argument(flag, default=os.environ.get(variable, default), help=f"env {variable}")


def batch_settings(args: argparse.Namespace) -> BatchSettings:
    """The batching flags of `args` checked; FlagError names the one out of range."""
    named = {flag: f"{flag} ({variable})" for flag, variable, _ in BATCH_FLAGS}
    return BatchSettings(
        max_batch_size=integer_flag(args.max_batch_size, named["--max-batch-size"], 1),
        max_batch_tokens=integer_flag(args.max_batch_tokens, named["--max-batch-tokens"], 1),
        max_batch_delay_us=integer_flag(args.max_batch_delay_us, named["--max-batch-delay-us"], 0),
        max_queue=integer_flag(args.max_queue, named["--max-queue"], 1),
        max_padding=padding_flag(args.max_padding, named["--max-padding"]),
        max_wait_ms=integer_flag(args.max_wait_ms, named["--max-wait-ms"], 0),
        schedule=schedule_flag(args.schedule, named["--schedule"]),
    )


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, BatchSettings]:
    """The common flags and the batching flags; FlagError for a value out of range."""
    parser = server.service_parser(__doc__.splitlines()[0])
    add_batch_flags(parser)
    args = server.parse_service_args(parser, argv)
    if args.workers != 1:
        raise FlagError(
            f"--workers (WORKERS) must be 1 for the batched service (one queue, one inference "
            f"thread), got {args.workers}"
        )
    return args, batch_settings(args)


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
