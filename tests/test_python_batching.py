"""The Python batched service's parts, in process: the scheduler (the golden cases of
service/batching_cases.json, which the Rust scheduler's tests read too, random queues, and a
simulated stream for aging), the batcher (queue and inference thread) with a stand-in
classifier, its routes (a client that leaves is skipped) and flags, and the batch ceiling.

The service as a real process (contract, batching under load, 503s, SIGTERM) is tested by
tests/test_batching.py and the contract suites; service/CONTRACT.md "Batched services" is the
specification.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import uvicorn
from contract_cases import contract_cases
from fastapi.testclient import TestClient

from servebench import paths
from servebench.process import free_port
from servekit import batch_ceiling, batched, ceiling, inference, policy, replay, service
from servekit.contract import Refusal
from servekit.plan import Limits, fits, next_run, plan_all

pytestmark = pytest.mark.unit
GOLDEN = json.loads((paths.SERVICE / "batching_cases.json").read_text())
PLAN_CASES = GOLDEN["cases"]
LIMITS = GOLDEN["limits"]


# --- the scheduler (CONTRACT.md "Which requests run next") -------------------------------


def case_limits(case: dict[str, Any]) -> Limits:
    return Limits(**{name: case.get(name, value) for name, value in LIMITS.items()})


def check_next(lengths: list[int], waited_us: list[int], limits: Limits) -> list[int]:
    """The next run, after checking what every choice must satisfy."""
    chosen = next_run(lengths, waited_us, limits)
    if not lengths:
        assert chosen == []
        return chosen
    assert chosen and len(set(chosen)) == len(chosen)
    assert chosen == sorted(chosen, key=lambda i: (lengths[i], i)), "not in row order"
    longest = max(lengths[i] for i in chosen)
    tokens = sum(lengths[i] for i in chosen)
    assert len(chosen) == 1 or fits(len(chosen), longest, tokens, limits), chosen
    oldest = min(range(len(lengths)), key=lambda i: (-waited_us[i], i))
    assert len(chosen) <= limits.max_batch_size
    if waited_us[oldest] > limits.max_wait_ms * 1000:
        assert oldest in chosen, "the aged anchor runs first"
    else:
        assert min(lengths) == lengths[chosen[0]], "the shortest runs first"
        # A prefix of the (length, index) order, cut where the next did not fit.
        walk = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        assert walk[: len(chosen)] == chosen
        if len(chosen) < len(walk):
            following = walk[len(chosen)]
            assert not fits(
                len(chosen) + 1, lengths[following], tokens + lengths[following], limits
            )
    return chosen


class TestScheduler:
    @pytest.mark.parametrize("case", PLAN_CASES, ids=[case["id"] for case in PLAN_CASES])
    def test_golden_case(self, case: dict[str, Any]) -> None:
        lengths, limits = case["lengths"], case_limits(case)
        waited = case.get("waited_us", [0] * len(lengths))
        assert plan_all(lengths, limits, waited) == case["runs"]
        if lengths:
            assert check_next(lengths, waited, limits) == case["runs"][0]

    def test_golden_cases_are_well_formed(self) -> None:
        ids = [case["id"] for case in PLAN_CASES]
        assert len(ids) == len(set(ids)), "case ids must be unique"
        assert set(LIMITS) == {"max_batch_size", "max_batch_tokens", "max_padding", "max_wait_ms"}
        for case in PLAN_CASES:
            indices = sorted(index for group in case["runs"] for index in group)
            assert indices == list(range(len(case["lengths"]))), case["id"]
            assert len(case.get("waited_us", case["lengths"])) == len(case["lengths"])
        assert any("waited_us" in case for case in PLAN_CASES), "no aging case"

    @pytest.mark.parametrize("seed", range(30))
    def test_random_queues_satisfy_every_rule(self, seed: int) -> None:
        rng = random.Random(seed)
        n = rng.randint(1, 60)
        lengths = [rng.choice([rng.randint(3, 40), rng.randint(3, 512)]) for _ in range(n)]
        waited = [rng.choice([0, rng.randint(0, 300_000)]) for _ in range(n)]
        limits = Limits(
            max_batch_size=rng.choice([1, 4, 32]),
            max_batch_tokens=rng.choice([512, 1024, 8192]),
            max_padding=rng.choice([0.0, 0.1, 0.25, 0.5, 0.9]),
            max_wait_ms=rng.choice([0, 50, 100, 10_000]),
        )
        check_next(lengths, waited, limits)


def simulate(
    arrivals: list[tuple[float, int]], limits: Limits, run_ms: Callable[[int, int], float]
) -> dict[int, float]:
    """A single inference thread choosing with `next_run`: requests (arrival ms, tokens)
    in time order, a run of r rows padded to L taking run_ms(r, L). Each request's wait (ms)
    from arrival to the start of its run."""
    waits: dict[int, float] = {}
    now, pending = 0.0, 0
    waiting: list[int] = []
    while len(waits) < len(arrivals):
        while pending < len(arrivals) and arrivals[pending][0] <= now:
            waiting.append(pending)
            pending += 1
        if not waiting:
            now = arrivals[pending][0]
            continue
        lengths = [arrivals[i][1] for i in waiting]
        waited = [round((now - arrivals[i][0]) * 1000) for i in waiting]
        chosen = [waiting[k] for k in next_run(lengths, waited, limits)]
        for index in chosen:
            waits[index] = now - arrivals[index][0]
        now += run_ms(len(chosen), max(arrivals[i][1] for i in chosen))
        waiting = [i for i in waiting if i not in chosen]
    return waits


class TestAging:
    """A long text among a steady stream of short ones that keeps the thread busy: shortest
    first alone runs it only when the stream stops; with aging it waits at most `max_wait_ms`
    plus the run in progress when it aged (CONTRACT.md "Which requests run next")."""

    # 3 short texts every 10 ms and runs of at most 4 taking 10 ms: the thread keeps up, yet
    # short texts are waiting whenever it chooses (they come as a run ends).
    STREAM: ClassVar = [(t * 10.0, 12) for t in range(200) for _ in range(3)]
    LONG: ClassVar = (5.0, 512)

    @staticmethod
    def run_ms(rows: int, longest: int) -> float:
        return 10.0 if longest < 100 else 120.0

    def long_wait(self, max_wait_ms: int) -> float:
        arrivals = sorted([*self.STREAM, self.LONG])
        limits = Limits(
            max_batch_size=4, max_batch_tokens=8192, max_padding=0.25, max_wait_ms=max_wait_ms
        )
        waits = simulate(arrivals, limits, self.run_ms)
        return waits[arrivals.index(self.LONG)]

    @pytest.mark.parametrize("max_wait_ms", [0, 20, 50, 100, 400])
    def test_a_long_text_waits_at_most_max_wait_plus_one_run(self, max_wait_ms: int) -> None:
        longest_run = self.run_ms(4, 12)  # what is running when it ages: a short run
        assert self.long_wait(max_wait_ms) <= max_wait_ms + longest_run

    def test_without_aging_the_stream_starves_it(self) -> None:
        assert self.long_wait(10**9) > 1000, "the scenario must starve shortest-first alone"


# --- the batcher, with a stand-in classifier ---------------------------------------------


class StandIn:
    """Tokenizes a text as its code points (so its length is its number of characters) and
    answers each row with its text as the label; `gate` holds a run (and the thread) in
    run_rows, so requests pile up behind it; a run holding `fail_on` raises."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on: str | None = None
        # A run holding `hold_on` waits for `hold` too: one run held while others go.
        self.hold_on: str | None = None
        self.hold = threading.Event()

    def encode_rows(self, texts: Sequence[str]) -> inference.Rows:
        return {"input_ids": [[ord(char) for char in text] for text in texts]}

    def run_rows(self, rows: inference.Rows, group: Sequence[int]) -> tuple[list[Any], int]:
        texts = ["".join(map(chr, rows["input_ids"][index])) for index in group]
        self.batches.append(texts)
        assert self.gate.wait(10), "the test never opened the gate"
        if self.hold_on in texts:
            assert self.hold.wait(10), "the test never let the held run go"
        if self.fail_on in texts:
            raise RuntimeError("inference failed")
        return [(text, 0.5) for text in texts], 2

    def classify_batch(self, texts: Sequence[str], limits: Limits) -> list[Any]:
        """Classifier's own batch call, over this stand-in's rows and runs."""
        return inference.Classifier.classify_batch(self, texts, limits)  # type: ignore[arg-type]


async def eventually(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def held_first_batch(batcher: Any, stand_in: StandIn) -> asyncio.Task[Any]:
    """Closes the gate and sends "first", which the thread takes and holds: what is sent next
    waits in the queue until the gate opens."""
    stand_in.gate.clear()
    first = asyncio.create_task(batcher.predict("first"))
    await eventually(lambda: len(stand_in.batches) == 1)
    return first


async def queue(batcher: Any, texts: Sequence[str]) -> list[asyncio.Task[Any]]:
    tasks, before = [], len(batcher.waiting)
    for text in texts:  # one at a time, so their arrival order is the list's
        tasks.append(asyncio.create_task(batcher.predict(text)))
        await eventually(lambda: len(batcher.waiting) == before + len(tasks))
    return tasks


def run_batcher(settings: Any, scenario: Callable[[Any, StandIn], Any]) -> Any:
    """`scenario(batcher, stand_in)` on a fresh event loop, the batcher stopped afterwards."""
    stand_in = StandIn()

    async def main() -> Any:
        batcher = batched.Batcher(stand_in, settings)
        batcher.start()
        try:
            return await scenario(batcher, stand_in)
        finally:
            stand_in.gate.set()
            await batcher.stop()
            assert not batcher.thread.is_alive()

    return asyncio.run(main())


class TestBatcher:
    def test_a_lone_request_is_a_batch_of_one(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            reply = await batcher.predict("alone")
            assert reply.prediction.label == "alone"
            assert reply.headers["x-batch-size"] == "1"
            assert int(reply.headers["x-queue-time"]) >= 0
            assert stand_in.batches == [["alone"]]

        run_batcher(batched.BatchSettings(), scenario)

    def test_equal_lengths_run_in_arrival_order_up_to_the_batch_size(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            texts = [f"text {i}" for i in range(6)]
            tasks = await queue(batcher, texts)
            stand_in.gate.set()
            replies = await asyncio.gather(first, *tasks)
            assert stand_in.batches == [["first"], texts[:4], texts[4:]]
            assert [r.prediction.label for r in replies] == ["first", *texts]
            sizes = [r.headers["x-batch-size"] for r in replies]
            assert sizes == ["1", "4", "4", "4", "4", "2", "2"]

        run_batcher(batched.BatchSettings(max_batch_size=4), scenario)

    def test_the_shortest_waiting_run_first_and_a_long_one_alone(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            texts = ["x" * 40, "bb", "a", "cc", "x" * 41]
            tasks = await queue(batcher, texts)
            stand_in.gate.set()
            await asyncio.gather(first, *tasks)
            # 1 and 2 characters together are 25 % padding; 40 and 41 share a run.
            assert stand_in.batches == [["first"], ["a", "bb", "cc"], ["x" * 40, "x" * 41]]

        run_batcher(batched.BatchSettings(), scenario)

    def test_a_request_past_max_wait_runs_before_shorter_ones(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["long text", "a"])
            await asyncio.sleep(0.05)  # both past 20 ms: the longest-waiting goes first
            stand_in.gate.set()
            await asyncio.gather(first, *tasks)
            assert stand_in.batches == [["first"], ["long text"], ["a"]]

        run_batcher(batched.BatchSettings(max_wait_ms=20, schedule="continuous"), scenario)

    @pytest.mark.parametrize(
        ("schedule", "after"),
        [("batch", ["long text", "a"]), ("continuous", ["a", "long text"])],
    )
    def test_a_newer_shorter_request_waits_for_the_taken_batch_only_in_the_batch_schedule(
        self, schedule: str, after: list[str]
    ) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["long text", "bb"])
            stand_in.hold_on = "bb"
            stand_in.gate.set()
            await eventually(lambda: len(stand_in.batches) == 2)  # "bb"'s run, held
            tasks += await queue(batcher, ["a"])
            stand_in.hold.set()
            await asyncio.gather(first, *tasks)
            assert stand_in.batches == [["first"], ["bb"], *([text] for text in after)]

        run_batcher(batched.BatchSettings(schedule=schedule), scenario)

    def test_each_run_is_answered_as_soon_as_it_ran(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            short, long = await queue(batcher, ["a", "x" * 30])
            stand_in.hold_on = "x" * 30
            stand_in.gate.set()
            reply = await short
            await eventually(lambda: len(stand_in.batches) == 3)  # the long run, held
            assert reply.prediction.label == "a" and not long.done()
            stand_in.hold.set()
            assert (await long).prediction.label == "x" * 30
            await first

        run_batcher(batched.BatchSettings(), scenario)

    def test_a_request_whose_handler_is_gone_is_not_run(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            gone, kept = await queue(batcher, ["gone", "kept"])
            gone.cancel()
            with pytest.raises(Refusal):  # what a cancelled handler says (shutdown)
                await gone
            stand_in.gate.set()
            assert (await kept).prediction.label == "kept"
            await first
            assert stand_in.batches == [["first"], ["kept"]]

        run_batcher(batched.BatchSettings(), scenario)

    def test_the_batch_delay_waits_for_company(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            early = asyncio.create_task(batcher.predict("early"))
            await asyncio.sleep(0.05)
            late = asyncio.create_task(batcher.predict("late"))
            await asyncio.gather(early, late)
            assert stand_in.batches == [["late", "early"]]  # one run, shortest row first

        run_batcher(batched.BatchSettings(max_batch_delay_us=500_000), scenario)

    def test_the_batch_delay_ends_at_the_batch_size(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            started = time.monotonic()
            await asyncio.gather(*(batcher.predict(t) for t in "abcd"))
            assert time.monotonic() - started < 5, "waited the whole delay out"
            assert stand_in.batches == [["a", "b"], ["c", "d"]]

        run_batcher(batched.BatchSettings(max_batch_size=2, max_batch_delay_us=10**7), scenario)

    def test_a_full_queue_refuses_at_once_and_the_queued_are_answered(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            waiting = await queue(batcher, ["a", "b"])
            with pytest.raises(Refusal) as refused:
                await asyncio.wait_for(batcher.predict("one too many"), timeout=1)
            assert refused.value.status == 503
            assert refused.value.message == "queue full: 2 requests waiting; retry later"
            assert refused.value.headers == {"Retry-After": "1"}
            stand_in.gate.set()
            replies = await asyncio.gather(first, *waiting)
            assert [r.prediction.label for r in replies] == ["first", "a", "b"]
            assert (await batcher.predict("after")).prediction.label == "after"

        run_batcher(batched.BatchSettings(max_queue=2), scenario)

    def test_a_failing_run_answers_each_of_its_requests_500_and_serving_goes_on(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            stand_in.fail_on = "bad"
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["x", "bad", "bee"])
            stand_in.gate.set()
            results = await asyncio.gather(first, *tasks, return_exceptions=True)
            assert stand_in.batches == [["first"], ["x"], ["bad", "bee"]]
            assert [r.prediction.label for r in (results[0], results[1])] == ["first", "x"]
            for result in results[2:]:
                assert isinstance(result, Refusal)
                assert (result.status, result.message) == (500, "internal error")
            assert (await batcher.predict("next")).prediction.label == "next"

        run_batcher(batched.BatchSettings(), scenario)

    def test_the_counts_add_each_run_padded_to_its_longest_row(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            assert batcher.counts == batched.RunCounts(0, 0, 0, 0)
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["bbb", "a", "cccccc"])
            stand_in.gate.set()
            await asyncio.gather(first, *tasks)
            assert stand_in.batches == [["first"], ["a", "bbb", "cccccc"]]
            # "first" alone (5 of 5), then rows of 1, 3 and 6 tokens padded to 6: 10 of 18.
            assert batcher.counts == batched.RunCounts(runs=2, rows=4, tokens=15, positions=23)

        # A loose padding limit, so the three lengths share one run.
        run_batcher(batched.BatchSettings(max_padding=0.9), scenario)

    def test_a_failed_run_is_not_counted(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            stand_in.fail_on = "bad"
            with pytest.raises(Refusal):
                await batcher.predict("bad")
            await batcher.predict("good")
            assert batcher.counts == batched.RunCounts(runs=1, rows=1, tokens=4, positions=4)

        run_batcher(batched.BatchSettings(), scenario)

    def test_stopping_answers_everything_queued_first(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["a", "b", "c"])
            stopping = asyncio.create_task(batcher.stop())
            await eventually(lambda: batcher.stopping)
            stand_in.gate.set()
            replies = await asyncio.gather(first, *tasks)
            await stopping
            assert [r.prediction.label for r in replies] == ["first", "a", "b", "c"]
            assert not batcher.thread.is_alive()

        run_batcher(batched.BatchSettings(max_batch_size=2), scenario)


# --- the in-process ceilings (python -m servekit.ceiling / servekit.batch_ceiling) ----------


class Counting:
    """A classifier that counts its calls and answers with fixed stage times."""

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, text: str) -> Any:
        self.calls += 1
        return inference.Prediction(text, 0.5, tokenization_us=3, inference_us=4)


CEILING_LIMITS = Limits(max_batch_size=32, max_batch_tokens=8192, max_padding=0.25, max_wait_ms=0)


class TestCeilings:
    def test_the_ceiling_times_each_classification(self) -> None:
        once = Counting()
        rows = ceiling.measure(once, "text", iterations=3, warmup=2)
        assert rows[0] == "iteration,tokenization_us,inference_us,total_us"
        assert [row.split(",")[:3] for row in rows[1:]] == [[str(i), "3", "4"] for i in range(3)]
        assert once.calls == 5

    def test_the_ceiling_serves_iteration_counts_from_stdin(self) -> None:
        counting = Counting()
        out = io.StringIO()
        ceiling.serve(counting, "text", 2, io.StringIO("3\n1\n"), out)
        answers = out.getvalue().split("\n\n")
        assert answers[-1] == ""  # each answer ends with an empty line
        assert [len(a.splitlines()) for a in answers[:-1]] == [3, 1]
        assert answers[0].splitlines()[0].split(",")[:3] == ["0", "3", "4"]
        assert counting.calls == 2 + 3 + 1

    def test_the_batch_ceiling_serves_batch_sizes_and_counts_from_stdin(self) -> None:
        stand_in = StandIn()
        path = batch_ceiling.BatchPath(stand_in, "t", CEILING_LIMITS)  # type: ignore[arg-type]
        out = io.StringIO()
        batch_ceiling.serve(path, [1, 4], 1, io.StringIO("4 2\n1 1\n"), out)
        answers = out.getvalue().split("\n\n")[:-1]
        assert [[row.split(",")[:2] for row in a.splitlines()] for a in answers] == [
            [["4", "0"], ["4", "1"]],
            [["1", "0"]],
        ]
        assert [len(batch) for batch in stand_in.batches] == [1, 4, 4, 4, 1]

    def test_the_batch_ceiling_times_each_batch(self) -> None:
        stand_in = StandIn()
        path = batch_ceiling.BatchPath(stand_in, "t", CEILING_LIMITS)  # type: ignore[arg-type]
        rows = batch_ceiling.measure(path, [1, 3], 2, 1)
        assert rows[0] == "batch_size,iteration,tokenization_us,inference_us,total_us"
        assert [row.split(",")[:2] + row.split(",")[3:4] for row in rows[1:]] == [
            ["1", "0", "2"],
            ["1", "1", "2"],
            ["3", "0", "2"],
            ["3", "1", "2"],
        ]
        assert all(row.split(",")[2].isdigit() for row in rows[1:]), "tokenization µs"
        assert [len(batch) for batch in stand_in.batches] == [1, 1, 1, 3, 3, 3]

    @staticmethod
    def replayed(texts: list[str], levels: list[int], requests: str | None = None) -> Any:
        """The replay's output and the stand-in's runs, through a real Batcher."""
        stand_in = StandIn()
        batcher = batched.Batcher(stand_in, batched.BatchSettings(max_batch_size=4))
        out = io.StringIO()
        lines = io.StringIO(requests) if requests is not None else None
        asyncio.run(
            replay.replay(batcher, texts, levels, warmup=2, iterations=2, requests=lines, out=out)
        )
        return out.getvalue(), stand_in.batches

    def test_the_replay_answers_every_text_once_per_pass(self) -> None:
        texts = [f"t{i}" + "x" * (i % 5) for i in range(12)]
        out, runs = self.replayed(texts, [1, 3])
        rows = out.splitlines()
        assert rows[0] == "clients,iteration,texts,total_us"
        assert [r.split(",")[:3] for r in rows[1:]] == [
            [c, i, "12"] for c in ("1", "3") for i in ("0", "1")
        ]
        assert all(int(r.split(",")[3]) > 0 for r in rows[1:])
        # an untimed pass over the first 2 texts at each level, then 2 timed passes per level
        answered = sorted(text for run in runs for text in run)
        assert answered == sorted(texts[:2] * 2 + texts * 4)
        assert max(len(run) for run in runs) <= 3, "never more runs' rows than clients"

    def test_one_client_is_every_text_alone(self) -> None:
        _, runs = self.replayed([f"text {i}" for i in range(6)], [1])
        assert {len(run) for run in runs} == {1}

    def test_the_replay_serves_passes_from_stdin(self) -> None:
        texts = [f"text {i}" for i in range(7)]
        out, _ = self.replayed(texts, [2], requests="2 1\n2 2 3\n")
        answers = out.split("\n\n")
        assert answers[-1] == ""
        assert [[row.split(",")[:3] for row in a.splitlines()] for a in answers[:-1]] == [
            [["2", "0", "7"]],
            [["2", "0", "3"], ["2", "1", "3"]],
        ]

    def test_the_replay_refuses_a_bad_texts_file_or_more_clients_than_the_queue(
        self, tmp_path: Path
    ) -> None:
        good = tmp_path / "texts.json"
        good.write_text('["a", "b c"]')
        assert replay.read_texts(good) == ["a", "b c"]
        for bad in ("[]", '["a", " "]', '{"inputs": "a"}', "[1]", "not json"):
            good.write_text(bad)
            with pytest.raises(ValueError, match="texts file"):
                replay.read_texts(good)
        with pytest.raises(batched.FlagError, match="exceed --max-queue 8"):
            replay.parse_args(
                ["--model-dir", "m", "--texts-file", "t", "--clients", "1,9", "--max-queue", "8"]
            )

    def test_the_batch_ceiling_reads_a_body_or_plain_text(self) -> None:
        assert batch_ceiling.payload_text(b'{"inputs": "a text"}') == "a text"
        assert batch_ceiling.payload_text(b"  plain\n") == "plain"
        with pytest.raises(Refusal):
            batch_ceiling.payload_text(b"{}")


# --- the routes (shared with the unbatched service) --------------------------------------


@pytest.fixture()
def routes() -> Any:
    stand_in = StandIn()
    app = batched.create_app(stand_in, batched.BatchSettings(max_queue=1))
    with TestClient(app) as client:  # (runs the lifespan: the inference thread)
        yield SimpleNamespace(client=client, stand_in=stand_in, batcher=app.state.batcher)
        stand_in.gate.set()


CASES = contract_cases()


class TestRoutes:
    def test_an_answer_with_the_batch_headers(self, routes: Any) -> None:
        response = routes.client.post("/age", json={"inputs": "hello"})
        assert response.status_code == 200
        assert response.json() == {"label": "hello", "score": 0.5}
        headers = response.headers
        for name in ("x-tokenization-time", "x-inference-time", "x-total-time", "x-queue-time"):
            assert headers[name].isdigit(), name
        assert headers["x-batch-size"] == "1"
        assert routes.client.get("/health").json() == {"status": "ok"}

    def test_stats_answers_the_counts_of_the_runs_made(self, routes: Any) -> None:
        zero = {"runs": 0, "rows": 0, "tokens": 0, "positions": 0}
        assert routes.client.get("/stats").json() == zero
        assert routes.client.post("/age", json={"inputs": "hello"}).status_code == 200
        response = routes.client.get("/stats")
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == "application/json"
        assert response.json() == {"runs": 1, "rows": 1, "tokens": 5, "positions": 5}
        refused = routes.client.post("/stats")
        assert (refused.status_code, refused.json()) == (405, {"error": "method not allowed"})

    @pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
    def test_each_malformed_request_gets_the_contract_answer(self, routes: Any, case: Any) -> None:
        response = routes.client.request(
            case.method, case.path, content=case.body, headers=case.headers
        )
        assert response.status_code == case.status, response.text
        assert response.headers["content-type"].split(";")[0] == "application/json"
        body = response.json()
        assert set(body) == {"error"} and body["error"].startswith(case.error), body

    def test_a_full_queue_answers_503_json_with_retry_after(self, routes: Any) -> None:
        routes.stand_in.gate.clear()
        held = [
            threading.Thread(target=routes.client.post, args=("/age",), kwargs={"json": body})
            for body in ({"inputs": "taken"}, {"inputs": "waiting"})
        ]
        held[0].start()
        deadline = time.monotonic() + 10
        while not routes.stand_in.batches:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        held[1].start()
        while len(routes.batcher.waiting) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        response = routes.client.post("/age", json={"inputs": "refused"})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["content-type"].split(";")[0] == "application/json"
        assert response.json() == {"error": "queue full: 1 requests waiting; retry later"}
        routes.stand_in.gate.set()
        for thread in held:
            thread.join(10)
        assert routes.stand_in.batches == [["taken"], ["waiting"]]


# --- a client that leaves (a real uvicorn server in a thread) ------------------------------


@pytest.fixture()
def served() -> Iterator[SimpleNamespace]:
    stand_in = StandIn()
    app = batched.create_app(stand_in, batched.BatchSettings())
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield SimpleNamespace(port=port, stand_in=stand_in, batcher=app.state.batcher)
    stand_in.gate.set()
    server.should_exit = True
    thread.join(10)


def send(port: int, text: str) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps({"inputs": text})
    connection.request("POST", "/age", body, {"Content-Type": "application/json"})
    return connection


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_a_request_whose_client_left_is_never_run(served: Any) -> None:
    served.stand_in.gate.clear()
    first = send(served.port, "first")
    wait_for(lambda: served.stand_in.batches == [["first"]])  # held in its run
    gone = send(served.port, "gone")
    wait_for(lambda: len(served.batcher.waiting) == 1)
    job = served.batcher.waiting[0]
    gone.sock.shutdown(socket.SHUT_RDWR)
    gone.close()
    wait_for(job.future.cancelled)
    kept = send(served.port, "kept")
    wait_for(lambda: len(served.batcher.waiting) == 2)
    served.stand_in.gate.set()
    for connection, text in ((first, "first"), (kept, "kept")):
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())["label"]) == (200, text)
        connection.close()
    assert served.stand_in.batches == [["first"], ["kept"]]


# --- flags -------------------------------------------------------------------------------

BATCH_VARIABLES = [variable for _, variable, _ in batched.BATCH_FLAGS]


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in [*BATCH_VARIABLES, "WORKERS", "MODEL_DIR"]:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


class TestFlags:
    def test_defaults(self, clean_env: pytest.MonkeyPatch) -> None:
        args, settings = batched.parse_args(["--model-dir", "m"])
        assert settings == batched.BatchSettings(**policy.DEFAULTS)
        assert settings == policy.BatchSettings()
        assert args.workers == 1

    def test_environment_then_flags(self, clean_env: pytest.MonkeyPatch) -> None:
        clean_env.setenv("MAX_BATCH_SIZE", "7")
        clean_env.setenv("MAX_PADDING", "0.5")
        clean_env.setenv("MAX_QUEUE", "9")
        _, settings = batched.parse_args(["--model-dir", "m", "--max-queue", "3"])
        assert (settings.max_batch_size, settings.max_padding) == (7, 0.5)
        assert settings.max_queue == 3

    @pytest.mark.parametrize(
        ("flag", "value"),
        [
            ("--max-batch-size", "0"),
            ("--max-batch-size", "two"),
            ("--max-batch-tokens", "0"),
            ("--max-batch-delay-us", "-1"),
            ("--max-queue", "0"),
            ("--max-padding", "1"),
            ("--max-padding", "-0.1"),
            ("--max-padding", "nan"),
            ("--max-padding", "a lot"),
        ],
    )
    def test_a_bad_value_names_its_flag(
        self, clean_env: pytest.MonkeyPatch, flag: str, value: str
    ) -> None:
        with pytest.raises(batched.FlagError, match=f"^{flag} "):
            batched.parse_args(["--model-dir", "m", flag, value])

    def test_a_bad_environment_value_names_flag_and_variable(
        self, clean_env: pytest.MonkeyPatch
    ) -> None:
        clean_env.setenv("MAX_PADDING", "1.5")
        with pytest.raises(batched.FlagError, match=r"--max-padding \(MAX_PADDING\)"):
            batched.parse_args(["--model-dir", "m"])

    def test_one_worker_only(self, clean_env: pytest.MonkeyPatch) -> None:
        with pytest.raises(batched.FlagError, match=r"^--workers"):
            batched.parse_args(["--model-dir", "m", "--workers", "2"])

    def test_the_token_budget_holds_a_longest_row(self) -> None:
        model = SimpleNamespace(info=SimpleNamespace(max_length=512))
        batched.check_against_model(batched.BatchSettings(max_batch_tokens=512), model)
        with pytest.raises(batched.FlagError, match="max_length 512"):
            batched.check_against_model(batched.BatchSettings(max_batch_tokens=511), model)

    def test_bad_flags_exit_2_with_one_line(
        self, clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert batched.main(["--model-dir", "m", "--max-padding", "2"]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and "--max-padding" in lines[0], lines

    def test_a_missing_model_dir_exits_2_as_the_unbatched_service_does(
        self, clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        argv = ["--model-dir", str(tmp_path / "absent")]
        assert service.main(argv) == 2
        unbatched = capsys.readouterr().err
        assert batched.main(argv) == 2
        assert capsys.readouterr().err == unbatched
        assert len(unbatched.splitlines()) == 1 and "absent" in unbatched
