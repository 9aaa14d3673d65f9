"""service/CONTRACT.md against every registered service, as a real process over real HTTP.

Each test runs once per service (the session `service` fixture). Bad inputs must be
answered with the contract's exact status and a JSON `{"error": "<prefix>..."}` body,
and the service must still classify correctly right afterwards.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from contract_cases import ContractCase, contract_cases

from servebench.client import Answer, Client
from servebench.process import ServiceProcess
from servekit.inference import Classifier, softmax

pytestmark = pytest.mark.system

SEED = "I love you. I like you. I am your friend."
MAX_BODY = 1_048_576
TOLERANCE = 1e-4
JSON = {"Content-Type": "application/json"}

SENTENCES = [
    SEED,
    "This is the worst film I have ever seen. I hate it.",
    "The food was cold and the service was terrible.",
    "What a wonderful, delightful surprise!",
    "The meeting is at ten o'clock.",
    "café ☕ naïve résumé — 日本語のテキスト 🙂",
    "a",
    "  leading and trailing spaces  ",
]

# Something a path or a traceback would show; no error message may contain these.
LEAK = re.compile(r"Traceback|File \"|/work/|/home/|/usr/|/root/|site-packages|\.py\b|\.rs\b")


def json_body(document: Any) -> bytes:
    return json.dumps(document).encode()


def sized_body(size: int) -> bytes:
    """`{"inputs": "aaa..."}` of exactly `size` bytes."""
    head, tail = b'{"inputs": "', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


# The malformed requests and their answers live in service/contract_cases.json.
BAD_REQUESTS = contract_cases()


def send(client: Client, case: ContractCase) -> Answer:
    return client.request(case.method, case.path, case.body, case.headers)


@pytest.fixture(scope="session")
def reference(model_dir: Path) -> Any:
    """The Python inference code (its Classifier) on the same model, outside any service."""
    return Classifier(model_dir)


@pytest.fixture(scope="session")
def onnx_answers(reference: Any) -> dict[str, tuple[str, float]]:
    """ONNX Runtime's own answers to SENTENCES, computed once: every service must match them."""
    return {text: (p.label, p.score) for text in SENTENCES for p in [reference.classify(text)]}


@pytest.fixture()
def client(service: ServiceProcess) -> Iterator[Client]:
    with Client(service.host, service.port, timeout=60) as c:
        yield c


def assert_error(answer: Answer, status: int, prefix: str) -> None:
    assert answer.status == status, f"expected {status} {prefix!r}, got {answer}"
    assert answer.headers.get("content-type", "").split(";")[0] == "application/json", answer
    assert isinstance(answer.body, dict) and set(answer.body) == {"error"}, answer.body
    message = answer.body["error"]
    assert isinstance(message, str) and message.startswith(prefix), answer.body
    assert not LEAK.search(message), f"error message leaks internals: {message!r}"


def assert_seed_answer(answer: Answer) -> None:
    assert answer.status == 200, answer
    assert answer.body["label"] == "POSITIVE", answer.body
    assert 0.5 < answer.body["score"] <= 1.0, answer.body


def assert_still_serving(service: ServiceProcess) -> None:
    service.check_alive()
    with Client(service.host, service.port, timeout=60) as fresh:
        assert_seed_answer(fresh.classify(SEED))


# --- good answers ---------------------------------------------------------------------


def test_health(client: Client) -> None:
    answer = client.request("GET", "/health")
    assert answer.status == 200
    assert answer.body == {"status": "ok"}


def test_stats_is_the_batched_services_alone(service: ServiceProcess, client: Client) -> None:
    """GET /stats: the run counts of a batched service; an unknown path elsewhere."""
    assert_seed_answer(client.classify(SEED))
    answer = client.request("GET", "/stats")
    if not service.service.batching:
        assert_error(answer, 404, "not found")
        return
    assert answer.status == 200, answer
    assert answer.headers["content-type"].split(";")[0] == "application/json"
    names = ["runs", "rows", "tokens", "positions"]
    assert sorted(answer.body) == sorted(names), answer.body
    counts = [answer.body[name] for name in names]
    assert all(isinstance(count, int) for count in counts), answer.body
    # At least the seed's run so far; each run a row or more, each row a token or more.
    assert 0 < counts[0] <= counts[1] <= counts[2] <= counts[3], answer.body


def test_seed_sentence_is_positive(client: Client, reference: Any) -> None:
    answer = client.classify(SEED)
    assert_seed_answer(answer)
    assert set(answer.body) == {"label", "score"}
    assert answer.body["label"] in reference.info.labels
    assert answer.headers["content-type"].split(";")[0] == "application/json"


def test_stage_timing_headers(client: Client) -> None:
    answer = client.classify(SEED)
    assert answer.status == 200
    times = {}
    for name in ("x-tokenization-time", "x-inference-time", "x-total-time"):
        value = answer.headers.get(name)
        assert value is not None and re.fullmatch(r"\d+", value), f"{name}: {value!r}"
        times[name] = int(value)
    assert times["x-total-time"] >= times["x-inference-time"], times
    assert times["x-total-time"] >= times["x-tokenization-time"], times
    assert times["x-total-time"] <= answer.elapsed_us, (times, answer.elapsed_us)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"],
)
def test_content_type_parameters_and_case_are_accepted(client: Client, content_type: str) -> None:
    answer = client.request(
        "POST", "/age", json_body({"inputs": SEED}), {"Content-Type": content_type}
    )
    assert_seed_answer(answer)


@pytest.mark.parametrize(("arrays", "status"), [(126, 200), (127, 400)])
def test_nesting_limit_is_serde_jsons(client: Client, arrays: int, status: int) -> None:
    """127 levels (the object plus 126 arrays) are accepted; a 128th is malformed."""
    body = b'{"inputs": "I love it", "n": ' + b"[" * arrays + b"]" * arrays + b"}"
    assert client.request("POST", "/age", body, JSON).status == status


def test_control_characters_are_text_not_whitespace(client: Client) -> None:
    """U+001C..U+001F are not Unicode White_Space: a text of them is classified, not refused."""
    answer = client.request("POST", "/age", json_body({"inputs": "\x1c\x1f"}), JSON)
    assert answer.status == 200, answer


def test_other_keys_are_ignored(client: Client) -> None:
    body = json_body({"parameters": {"top_k": 3}, "inputs": SEED, "extra": [1, None]})
    assert_seed_answer(client.request("POST", "/age", body, JSON))


def test_body_of_exactly_1mib_is_accepted(client: Client) -> None:
    body = sized_body(MAX_BODY)
    assert len(body) == MAX_BODY
    answer = client.request("POST", "/age", body, JSON)
    assert answer.status == 200, answer


def long_text() -> str:
    """100,000 characters: > 512 tokens of praise first, then only abuse. Truncation
    on the right keeps the praise; any other treatment changes the answer."""
    praise = " ".join([SEED, "What a wonderful, delightful day."] * 50)
    abuse = " This is awful, I hate it, the worst thing ever."
    text = praise + abuse * (100_000 // len(abuse) + 1)
    return text[:100_000]


def classify_truncated(reference: Any, text: str) -> tuple[str, float]:
    """Tokenize without truncation, keep the first max_length-1 tokens plus [SEP], run."""
    # transformers' tokenizer itself, not the services' front end (servekit.tokenize): the
    # oracle must not share the code it judges.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(reference.model_dir), use_fast=True)
    info = reference.info
    ids = tokenizer(text, truncation=False, verbose=False)["input_ids"]
    assert len(ids) > info.max_length, "the long text must need truncation"
    ids = [*ids[: info.max_length - 1], tokenizer.sep_token_id]
    feed = {
        "input_ids": np.array([ids], dtype=np.int64),
        "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
        "token_type_ids": np.zeros((1, len(ids)), dtype=np.int64),
    }
    feed = {name: feed[name] for name in info.inputs}
    logits = reference.session.run([info.output], feed)[0][0]
    probabilities = softmax(logits.astype(np.float64))
    best = int(np.argmax(probabilities))
    return info.labels[best], float(probabilities[best])


def test_100k_characters_are_truncated_not_rejected(client: Client, reference: Any) -> None:
    text = long_text()
    assert len(text) == 100_000
    assert reference.info.max_length == 512
    label, score = classify_truncated(reference, text)
    answer = client.classify(text)
    assert answer.status == 200, answer
    assert answer.body["label"] == label == "POSITIVE", answer.body
    assert answer.body["score"] == pytest.approx(score, abs=TOLERANCE)


# --- bad inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_REQUESTS, ids=[b.id for b in BAD_REQUESTS])
def test_bad_request_gets_contract_error(service: ServiceProcess, bad: ContractCase) -> None:
    with Client(service.host, service.port, timeout=60) as c:
        answer = send(c, bad)
    assert_error(answer, bad.status, bad.error)
    assert_still_serving(service)


EDGE_BODIES = {
    "lone-surrogate": b'{"inputs": "I love \\ud800 it"}',
    "huge-integer": b'{"inputs": "I love it", "n": ' + b"7" * 5000 + b"}",
    "deep-nesting": b"[" * 100_000,
    "deep-nesting-inside-object": b'{"inputs": "x", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nul-byte-text": b'{"inputs": "\\u0000"}',
    "utf8-bom": b'\xef\xbb\xbf{"inputs": "I love it"}',
}


@pytest.mark.parametrize(("name", "body"), EDGE_BODIES.items(), ids=list(EDGE_BODIES))
def test_edge_bodies_never_get_a_server_error(
    service: ServiceProcess, name: str, body: bytes
) -> None:
    with Client(service.host, service.port, timeout=60) as c:
        answer = c.request("POST", "/age", body, JSON)
    assert answer.status < 500, f"{name}: {answer}"
    if answer.status != 200:
        assert isinstance(answer.body, dict) and set(answer.body) == {"error"}, answer
        assert not LEAK.search(answer.body["error"]), answer.body
    assert_still_serving(service)


def test_concurrent_bad_and_good_requests(
    service: ServiceProcess, onnx_answers: dict[str, tuple[str, float]]
) -> None:
    """200 requests from 16 threads, every other one bad: the good ones stay correct."""
    goods = [(text, onnx_answers[text][0]) for text in SENTENCES[:5]]
    bads = [b for b in BAD_REQUESTS if len(b.body or b"") < 10_000]

    def one(i: int) -> tuple[int, str, int, Any]:
        with Client(service.host, service.port, timeout=120) as c:
            if i % 2:
                bad = bads[i % len(bads)]
                answer = send(c, bad)
                return i, bad.id, answer.status, answer.body
            text, _ = goods[(i // 2) % len(goods)]
            answer = c.classify(text)
            return i, text, answer.status, answer.body

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(200)))

    expected_bad = {b.id: b.status for b in bads}
    expected_good = dict(goods)
    for i, what, status, body in results:
        if i % 2:
            assert status == expected_bad[what], (what, status, body)
        else:
            assert status == 200, (what, status, body)
            assert body["label"] == expected_good[what], (what, body)
    assert_still_serving(service)


# --- agreement ------------------------------------------------------------------------


def test_answers_agree_with_onnx_runtime(
    service: ServiceProcess, onnx_answers: dict[str, tuple[str, float]]
) -> None:
    with Client(service.host, service.port, timeout=60) as c:
        for text, (label, score) in onnx_answers.items():
            answer = c.classify(text)
            assert answer.status == 200, (text, answer)
            assert answer.body["label"] == label, (service.service.name, text, answer.body)
            assert answer.body["score"] == pytest.approx(score, abs=TOLERANCE), (text, answer.body)


def test_connection_close_is_honoured(service: ServiceProcess) -> None:
    """A request with `Connection: close` is answered (not dropped) before the close."""
    connection = http.client.HTTPConnection(service.host, service.port, timeout=60)
    try:
        connection.request(
            "POST", "/age", json_body({"inputs": SEED}), {**JSON, "Connection": "close"}
        )
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["label"] == "POSITIVE"
    finally:
        connection.close()
