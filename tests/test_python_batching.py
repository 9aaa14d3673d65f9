"""The Python batched service's parts, in process: sub-batch planning (the golden cases of
service/batching_cases.json, which the Rust planner's tests read too, and random plans), the
batcher (queue and inference thread) with a stand-in classifier, its routes and flags, and
`classify_batch` on the real model against the unbatched `classify`.

The service as a real process (contract, batching under load, 503s, SIGTERM) is tested by
tests/test_batching.py and the contract suites; service/CONTRACT.md "Batched services" is the
specification.
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from contract_cases import contract_cases
from fastapi.testclient import TestClient

from servebench import paths
from servekit import batch_ceiling, batched, ceiling, inference, policy, service
from servekit.contract import Refusal
from servekit.plan import plan_sub_batches

TOLERANCE = 1e-4
pytestmark = pytest.mark.unit
PLAN_CASES = json.loads((paths.SERVICE / "batching_cases.json").read_text())["cases"]


# --- sub-batch planning (CONTRACT.md step 4) --------------------------------------------


def check_plan(lengths: list[int], max_tokens: int, max_padding: float) -> list[list[int]]:
    """The plan, after checking what every plan must satisfy."""
    groups = plan_sub_batches(lengths, max_tokens, max_padding)
    walk = [index for group in groups for index in group]
    assert walk == sorted(range(len(lengths)), key=lambda i: lengths[i]), "not the stable order"
    for number, group in enumerate(groups):
        assert group, "an empty sub-batch"
        positions = len(group) * max(lengths[i] for i in group)
        if len(group) > 1:
            assert positions <= max_tokens, (group, positions)
            assert 1 - sum(lengths[i] for i in group) / positions <= max_padding, group
        if number + 1 < len(groups):
            # Greedy: the next sub-batch's first item did not fit into this one.
            grown = [*group, groups[number + 1][0]]
            rows, longest = len(grown), max(lengths[i] for i in grown)
            share = 1 - sum(lengths[i] for i in grown) / (rows * longest)
            assert rows * longest > max_tokens or share > max_padding, (group, grown)
    return groups


class TestPlanSubBatches:
    @pytest.mark.parametrize("case", PLAN_CASES, ids=[case["id"] for case in PLAN_CASES])
    def test_golden_case(self, case: dict[str, Any]) -> None:
        lengths, limits = case["lengths"], (case["max_batch_tokens"], case["max_padding"])
        assert check_plan(lengths, *limits) == case["sub_batches"]

    def test_golden_cases_are_well_formed(self) -> None:
        ids = [case["id"] for case in PLAN_CASES]
        assert len(ids) == len(set(ids)), "case ids must be unique"
        for case in PLAN_CASES:
            indices = sorted(index for group in case["sub_batches"] for index in group)
            assert indices == list(range(len(case["lengths"]))), case["id"]

    @pytest.mark.parametrize("seed", range(20))
    def test_random_plans_satisfy_every_rule(self, seed: int) -> None:
        rng = random.Random(seed)
        lengths = [rng.choice([rng.randint(3, 40), rng.randint(3, 512)]) for _ in range(40)]
        max_padding = rng.choice([0.0, 0.1, 0.25, 0.5, 0.9])
        check_plan(lengths, rng.choice([512, 1024, 8192]), max_padding)


# --- the batcher, with a stand-in classifier ---------------------------------------------


class StandIn:
    """Answers each text with itself as the label; `gate` holds a batch (and the thread) in
    classify_batch, so requests pile up behind it; a batch holding `fail_on` raises."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on: str | None = None

    def classify_batch(
        self, texts: Sequence[str], max_batch_tokens: int, max_padding: float
    ) -> list[Any]:
        self.batches.append(list(texts))
        assert self.gate.wait(10), "the test never opened the gate"
        if self.fail_on in texts:
            raise RuntimeError("inference failed")
        return [
            inference.BatchPrediction(
                label=text,
                score=0.5,
                tokenization_us=1,
                inference_us=2,
                batch_size=len(texts),
                sub_batch=0,
            )
            for text in texts
        ]


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
    tasks = [asyncio.create_task(batcher.predict(text)) for text in texts]
    await eventually(lambda: batcher.queue.qsize() >= len(texts))
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

    def test_waiting_requests_are_batched_oldest_first_up_to_the_batch_size(self) -> None:
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

    def test_the_batch_delay_waits_for_company(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            early = asyncio.create_task(batcher.predict("early"))
            await asyncio.sleep(0.05)
            late = asyncio.create_task(batcher.predict("late"))
            await asyncio.gather(early, late)
            assert stand_in.batches == [["early", "late"]]

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

    def test_a_failing_batch_answers_each_request_500_and_serving_goes_on(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            stand_in.fail_on = "bad"
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["x", "bad", "y"])
            stand_in.gate.set()
            results = await asyncio.gather(first, *tasks, return_exceptions=True)
            assert results[0].prediction.label == "first"
            for result in results[1:]:
                assert isinstance(result, Refusal)
                assert (result.status, result.message) == (500, "internal error")
            assert (await batcher.predict("next")).prediction.label == "next"

        run_batcher(batched.BatchSettings(), scenario)

    def test_stopping_answers_everything_queued_first(self) -> None:
        async def scenario(batcher: Any, stand_in: StandIn) -> None:
            first = await held_first_batch(batcher, stand_in)
            tasks = await queue(batcher, ["a", "b", "c"])
            stopping = asyncio.create_task(batcher.stop())
            await eventually(lambda: batcher.queue.qsize() == 4)  # the stop marker is queued
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
        path = batch_ceiling.BatchPath(stand_in, "t", 8192, 0.25)  # type: ignore[arg-type]
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
        path = batch_ceiling.BatchPath(stand_in, "t", 8192, 0.25)  # type: ignore[arg-type]
        rows = batch_ceiling.measure(path, [1, 3], 2, 1)
        assert rows[0] == "batch_size,iteration,tokenization_us,inference_us,total_us"
        assert [row.split(",")[:4] for row in rows[1:]] == [
            ["1", "0", "1", "2"],
            ["1", "1", "1", "2"],
            ["3", "0", "1", "2"],
            ["3", "1", "1", "2"],
        ]
        assert [len(batch) for batch in stand_in.batches] == [1, 1, 1, 3, 3, 3]

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
        while routes.batcher.queue.qsize() < 1:
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
