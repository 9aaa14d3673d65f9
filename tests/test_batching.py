"""The batched services as real processes: batching never changes an answer or sends it to
the wrong request, a full queue refuses at once with 503, SIGTERM answers what is queued.

The contract, fuzz and fault suites run against them too (every registry service); this
module tests what only a batched service does (service/CONTRACT.md "Batched services").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from servebench import paths, registry
from servebench.client import Answer, Client
from servebench.measure import workload
from servebench.process import ServiceProcess, free_port
from servekit.inference import Classifier

pytestmark = pytest.mark.system

BATCHED = [name for name, s in registry.load_registry().items() if s.batching]
TOLERANCE = 1e-4  # fp32: padding with attention mask 0 must not move a score
SEED_TEXT = "I love you. I like you. I am your friend."


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> Any:
    return Classifier(model_dir)


def start(
    name: str,
    model_dir: Path,
    built: dict[str, registry.Service],
    log_dir: Path,
    **env: str,
) -> ServiceProcess:
    return ServiceProcess(
        built[name], model_dir, log_dir / f"{name}.log", ready_timeout_s=180, extra_env=env
    )


@pytest.fixture(scope="module", params=BATCHED)
def batched(
    request: pytest.FixtureRequest,
    model_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    logs = tmp_path_factory.mktemp("batched")
    with start(request.param, model_dir, built_services, logs) as proc:
        yield proc


def classify_all(proc: ServiceProcess, texts: list[str], workers: int) -> list[Answer]:
    """Each text on its own connection, `workers` at a time."""

    def one(text: str) -> Answer:
        with Client(proc.host, proc.port, timeout=120) as client:
            return client.classify(text)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, texts))


def test_mixed_lengths_batched_together_keep_their_own_answers(
    batched: ServiceProcess, classifier: Any
) -> None:
    texts = workload.mixed_requests(96, seed=5)
    answers = classify_all(batched, texts, workers=48)
    sizes = []
    for text, answer in zip(texts, answers, strict=True):
        assert answer.status == 200, answer
        want = classifier.classify(text)
        assert answer.body["label"] == want.label
        assert abs(answer.body["score"] - want.score) <= TOLERANCE, (text[:60], answer.body)
        sizes.append(int(answer.headers["x-batch-size"]))
        assert int(answer.headers["x-queue-time"]) >= 0
    assert max(sizes) > 1, "48 concurrent requests were never batched"


def test_a_thousand_distinct_texts_each_get_their_own_answer(
    batched: ServiceProcess, classifier: Any
) -> None:
    sentences = workload.source_sentences()
    texts = [f"{sentences[i % len(sentences)]} Review {i}." for i in range(1000)]
    answers = classify_all(batched, texts, workers=64)
    wrong = []
    for text, answer in zip(texts, answers, strict=True):
        want = classifier.classify(text)
        got = answer.body if answer.status == 200 else {}
        if got.get("label") != want.label or abs(got.get("score", 9) - want.score) > TOLERANCE:
            wrong.append((text, answer.status, got, want))
    assert not wrong, f"{len(wrong)} of 1000 answers are not their own text's: {wrong[:3]}"


@pytest.fixture(scope="module")
def static_int8_dir(model_dir: Path) -> Path:
    """The default model's int8-static variant (made beside it with optimum, cached)."""
    from servebench.models.variant_build import export_variants

    made = export_variants("minilm-sentiment", ["int8-static"], output_dir=model_dir)
    return Path(made["int8-static"].output_dir)


@pytest.mark.parametrize("name", BATCHED)
def test_static_int8_answers_do_not_depend_on_batch_mates(
    name: str,
    static_int8_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path: Path,
) -> None:
    """A short text alone, then sent among sentences of other lengths and long texts (so it
    shares a padded sub-batch): the same score within the fp32 tolerance, every time."""
    short = "The soup was cold but the staff were lovely."
    mates = [*workload.source_sentences()[:40], *[(paths.PAYLOADS / "long.txt").read_text()] * 4]
    shared = []
    with start(name, static_int8_dir, built_services, tmp_path) as proc:
        alone = classify_all(proc, [short], workers=1)[0]
        assert alone.status == 200
        for attempt in range(3):
            texts = [*mates[attempt::3], short, *mates]
            mine = classify_all(proc, texts, workers=len(texts))[len(mates[attempt::3])]
            assert mine.status == 200 and mine.body["label"] == alone.body["label"]
            assert abs(mine.body["score"] - alone.body["score"]) <= TOLERANCE, mine.body
            shared.append(int(mine.headers["x-batch-size"]))
    assert max(shared) > 1, f"the short text never shared a batch: sizes {shared}"


def test_one_request_alone_is_a_batch_of_one(batched: ServiceProcess) -> None:
    with Client(batched.host, batched.port) as client:
        for _ in range(5):
            answer = client.classify("A lone request must not wait for company.")
            assert answer.status == 200
            assert answer.headers["x-batch-size"] == "1"


def run_counts(proc: ServiceProcess) -> dict[str, int]:
    """GET /stats (CONTRACT.md "Batched services")."""
    with Client(proc.host, proc.port) as client:
        answer = client.request("GET", "/stats")
    assert answer.status == 200, answer
    assert set(answer.body) == {"runs", "rows", "tokens", "positions"}, answer.body
    assert all(isinstance(count, int) for count in answer.body.values()), answer.body
    return answer.body


def counted_since(proc: ServiceProcess, before: dict[str, int]) -> dict[str, int]:
    return {name: count - before[name] for name, count in run_counts(proc).items()}


def token_lengths(classifier: Any, texts: list[str]) -> list[int]:
    """Each text's token length, as the services tokenize it (truncated, unpadded)."""
    return [len(ids) for ids in classifier.encode_rows(texts)["input_ids"]]


def test_requests_one_at_a_time_are_counted_as_runs_without_padding(
    batched: ServiceProcess, classifier: Any
) -> None:
    texts = ["I love it.", "The food was cold and the service was terrible.", "ok", SEED_TEXT]
    before = run_counts(batched)
    with Client(batched.host, batched.port) as client:
        for text in texts:
            assert client.classify(text).status == 200
    tokens = sum(token_lengths(classifier, texts))
    # A run of one row has no padding.
    expected = {"runs": len(texts), "rows": len(texts), "tokens": tokens, "positions": tokens}
    assert counted_since(batched, before) == expected


def test_concurrent_mixed_lengths_are_counted_with_their_padding(
    batched: ServiceProcess, classifier: Any
) -> None:
    texts = workload.mixed_requests(48, seed=11)
    before = run_counts(batched)
    answers = classify_all(batched, texts, workers=24)
    assert all(answer.status == 200 for answer in answers)
    counted = counted_since(batched, before)
    # Each request of a run of b rows says b: its run is 1/b of each of them.
    runs = sum(1 / int(answer.headers["x-batch-size"]) for answer in answers)
    assert counted["runs"] == round(runs)
    assert counted["rows"] == len(texts)
    assert counted["tokens"] == sum(token_lengths(classifier, texts))
    assert counted["positions"] >= counted["tokens"]


@pytest.mark.parametrize("name", BATCHED)
@pytest.mark.parametrize(("max_wait_ms", "aged"), [("30", True), ("600000", False)])
def test_a_long_text_waits_for_short_ones_only_until_it_has_aged(
    name: str,
    max_wait_ms: str,
    aged: bool,
    model_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path: Path,
) -> None:
    """The continuous schedule: 12 clients keep short texts waiting (2 to a run), so shortest
    first alone runs the long text only once they stop (the control, aging off); with aging it
    runs soon after max-wait-ms (CONTRACT.md "Which requests run next"). Bounds far from
    either outcome."""
    stream_s = 2.5
    long_text = (paths.PAYLOADS / "long.txt").read_text()
    with start(name, model_dir, built_services, tmp_path, MAX_BATCH_SIZE="2",
               MAX_WAIT_MS=max_wait_ms, SCHEDULE="continuous") as proc:  # fmt: skip
        ends = time.monotonic() + stream_s

        def short_stream(_: int) -> int:
            sent = 0
            with Client(proc.host, proc.port, timeout=60) as client:
                while time.monotonic() < ends:
                    assert client.classify("Short and sweet.").status == 200
                    sent += 1
            return sent

        with ThreadPoolExecutor(max_workers=13) as pool:
            streams = [pool.submit(short_stream, i) for i in range(12)]
            time.sleep(0.5)  # the stream is flowing
            long = pool.submit(classify_all, proc, [long_text], 1)
            sent_long = time.monotonic()
            answer = long.result()[0]
            answered = time.monotonic()
            assert sum(stream.result() for stream in streams) > 100
    assert answer.status == 200
    queued_s = int(answer.headers["x-queue-time"]) / 1e6
    if aged:
        assert queued_s < 1.0 and answered < ends, (queued_s, answered - sent_long)
    else:
        assert answered >= ends - 0.2 and queued_s > 1.0, (queued_s, answered - sent_long)


@pytest.mark.parametrize("name", BATCHED)
def test_a_full_queue_refuses_at_once_with_503_and_keeps_serving(
    name: str,
    model_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path: Path,
    classifier: Any,
) -> None:
    long_text = " ".join(workload.source_sentences()[:40])
    with start(name, model_dir, built_services, tmp_path, MAX_QUEUE="1") as proc:
        answers = classify_all(proc, [long_text] * 40, workers=40)
        refused = [a for a in answers if a.status == 503]
        served = [a for a in answers if a.status == 200]
        assert refused and served and len(refused) + len(served) == 40
        for answer in refused:
            assert answer.body["error"].startswith("queue full: 1 requests waiting")
            assert answer.headers.get("retry-after") == "1"
            assert answer.headers["content-type"].startswith("application/json")
        want = classifier.classify(long_text)
        assert all(abs(a.body["score"] - want.score) <= TOLERANCE for a in served)
        with Client(proc.host, proc.port) as client:
            assert client.classify("Still serving after the storm.").status == 200


# After SIGTERM the batched services answer the queue for 4 s (service/CONTRACT.md); the
# queued work is sized on the host that runs the test, so that it outlasts the signal and
# fits well inside those 4 s on a slow or busy machine too (a fixed 24 x 330 tokens took
# ~1.5 s on one host and more than 4 s on another, whose CI then saw 503s).
QUEUED_WORK_S = 1.5
SIGNAL_AFTER_S = 0.5


@pytest.mark.parametrize("name", BATCHED)
def test_sigterm_answers_every_queued_request_then_exits(
    name: str, model_dir: Path, built_services: dict[str, registry.Service], tmp_path: Path
) -> None:
    long_text = " ".join(workload.source_sentences()[:40])
    # Runs of one request each, so that the queue drains one measured run at a time.
    with start(name, model_dir, built_services, tmp_path, MAX_BATCH_SIZE="1") as proc:
        classify_all(proc, [long_text], 1)  # warm
        took_one = min(classify_all(proc, [long_text], 1)[0].elapsed_us for _ in range(3)) / 1e6
        count = min(48, max(6, round(QUEUED_WORK_S / took_one)))
        answered_at: list[float] = []

        def one(_: int) -> Answer:
            with Client(proc.host, proc.port, timeout=120) as client:
                answer = client.classify(long_text)
            answered_at.append(time.monotonic())
            return answer

        with ThreadPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(one, index) for index in range(count)]
            time.sleep(SIGNAL_AFTER_S)  # every request sent and queued, the first ones running
            os.kill(proc.pid, signal.SIGTERM)
            stopped = time.monotonic()
            assert proc.popen is not None
            try:
                code = proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running 5 s after SIGTERM:\n{proc.log_tail()}")
            took = time.monotonic() - stopped
            answers = [f.result() for f in futures]
        statuses = [a.status for a in answers]
        assert statuses == [200] * count, (statuses, f"{count} x {took_one:.3f} s queued")
        assert max(answered_at) > stopped, "the queue was empty at SIGTERM: nothing was tested"
        assert took <= 5 and code in (0, -signal.SIGTERM, 128 + signal.SIGTERM)


@pytest.mark.parametrize("name", BATCHED)
@pytest.mark.parametrize(
    ("variable", "value", "flag"),
    [("MAX_PADDING", "1.5", "max-padding"), ("MAX_BATCH_SIZE", "0", "max-batch-size"),
     ("MAX_BATCH_TOKENS", "16", "max-batch-tokens")],
)  # fmt: skip
def test_bad_batching_flags_stop_the_service_at_start(
    name: str,
    variable: str,
    value: str,
    flag: str,
    model_dir: Path,
    built_services: dict[str, registry.Service],
) -> None:
    argv, env = registry.launch_command(
        built_services[name],
        model_dir=model_dir,
        host="127.0.0.1",
        port=free_port(),
        threads=1,
        workers=1,
    )
    result = subprocess.run(
        argv, env={**env, variable: value}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert any(flag in line for line in lines[-3:]), result.stderr[-600:]


@pytest.mark.parametrize("name", BATCHED)
def test_the_replay_passes_the_texts_through_the_services_own_queue(
    name: str,
    model_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path: Path,
) -> None:
    """Each batched service's registry `replay` (the in-process limit of the mixed workload):
    every text answered once per pass at each client count, one CSV row per pass; its
    batching flags come from the environment, as the service's do, and a bad one stops it."""
    service = built_services[name]
    texts = workload.mixed_requests(12, seed=5)
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts))
    values = registry.command_values(service)
    argv = [registry.render(part, values) for part in service.replay]
    argv += ["--model-dir", str(model_dir), "--texts-file", str(texts_file), "--threads", "1"]
    argv += ["--clients", "1,4", "--warmup", "3", "--iterations", "2"]
    env = {**os.environ, "USE_TORCH": "0", "MAX_BATCH_SIZE": "4"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-600:]
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert rows[0] == ["clients", "iteration", "texts", "total_us"]
    assert [row[:3] for row in rows[1:]] == [[c, i, "12"] for c in ("1", "4") for i in ("0", "1")]
    assert all(int(row[3]) > 0 for row in rows[1:])
    refused = subprocess.run(
        argv, env={**env, "SCHEDULE": "lifo"}, capture_output=True, text=True, timeout=300
    )
    assert refused.returncode != 0 and "SCHEDULE" in refused.stderr
    served = subprocess.run(
        [*argv, "--serve"], env=env, input="4 1\n2 1 5\n", capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    answers = served.stdout.split("\n\n")
    assert served.returncode == 0 and answers[-1] == "", served.stderr[-600:]
    assert [a.split(",")[:3] for a in answers[:-1]] == [["4", "0", "12"], ["2", "0", "5"]]
