"""Generated requests: schemathesis on the Python service's OpenAPI document, and
hypothesis-made raw bodies against every service. No input may cause a 5xx, drop the
connection or leave the service unhealthy."""

from __future__ import annotations

import http.client
import json
import sys
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from servebench.process import ServiceProcess

pytestmark = pytest.mark.system

SEED = "I love you. I like you. I am your friend."
MAX_EXAMPLES = 60

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


# --- schemathesis ---------------------------------------------------------------------


@pytest.mark.parametrize("service", ["python"], indirect=True)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_schema(service: ServiceProcess, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} >= {("POST", "/age")}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    for operation in operations:
        parameters = (operation.body, operation.query, operation.headers, operation.path_parameters)
        if mode is GenerationMode.NEGATIVE and not any(parameters):
            continue  # nothing in a bodiless, parameterless operation can be made invalid

        @settings(FUZZ_SETTINGS, max_examples=40)
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = case.call(base_url=service.url, timeout=60)
            case.validate_response(response, checks=checks)

        check()
    service.check_alive()
    assert health(service) == 200


# --- raw bodies against every service -------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
# Strings with anything in them: controls, non-BMP, and (escaped) lone surrogates.
wild_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=200)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# Statuses answered during the current raw-body test (reset by the `fuzz_target` fixture).
SEEN: Counter[int] = Counter()


def post(service: ServiceProcess, body: bytes, content_type: str | None = "application/json"):
    """POST /age on a fresh connection; a dropped connection fails the test."""
    connection = http.client.HTTPConnection(service.host, service.port, timeout=60)
    headers = {"Content-Type": content_type} if content_type is not None else {}
    try:
        connection.request("POST", "/age", body=body, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as error:
        service.check_alive()
        pytest.fail(
            f"{service.service.name} dropped the connection for body {body[:200]!r}: {error!r}"
        )
    finally:
        connection.close()
    SEEN[response.status] += 1
    return response.status, raw


def health(service: ServiceProcess) -> int:
    connection = http.client.HTTPConnection(service.host, service.port, timeout=30)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def assert_sane(service: ServiceProcess, body: bytes, status: int, raw: bytes) -> None:
    name = service.service.name
    assert status < 500, f"{name}: {status} {raw[:300]!r} for body {body[:300]!r}"
    document = json.loads(raw)
    if status == 200:
        assert set(document) == {"label", "score"}, document
    else:
        assert 400 <= status < 500 and set(document) == {"error"}, (status, document)


@pytest.fixture()
def fuzz_target(service: ServiceProcess, request: pytest.FixtureRequest):
    SEEN.clear()
    yield service
    request.node.user_properties.append(("statuses", dict(SEEN)))
    print(f"{request.node.name}: statuses {dict(sorted(SEEN.items()))}")
    service.check_alive()
    assert health(service) == 200, f"{service.service.name} unhealthy after fuzzing"


def assert_enough_requests() -> None:
    assert SEEN.total() >= MAX_EXAMPLES, f"only {SEEN.total()} requests were sent"


def test_arbitrary_bytes(fuzz_target: ServiceProcess) -> None:
    @FUZZ_SETTINGS
    @given(body=st.binary(max_size=4096))
    @example(body=b"")
    @example(body=b"\xff\xfe\x00")
    @example(body=b"\xef\xbb\xbf{}")
    @example(body=b"[" * 100_000)
    @example(body=b'{"inputs": "\xc3\x28"}')
    def check(body: bytes) -> None:
        assert_sane(fuzz_target, body, *post(fuzz_target, body))

    check()
    assert_enough_requests()


def test_arbitrary_json_values(fuzz_target: ServiceProcess) -> None:
    @FUZZ_SETTINGS
    @given(value=json_values)
    @example(value=10**5000)
    @example(value=float("nan"))
    @example(value={"inputs": "ok", "n": float("inf")})
    @example(value={"inputs": "ok", "n": 10**5000})
    @example(value=nested(150))
    def check(value: Any) -> None:
        body = json.dumps(value).encode()
        assert_sane(fuzz_target, body, *post(fuzz_target, body))

    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # so that json.dumps can write the 5000-digit example
    try:
        check()
    finally:
        sys.set_int_max_str_digits(limit)
    assert_enough_requests()


def test_objects_with_random_keys_and_values(fuzz_target: ServiceProcess) -> None:
    @FUZZ_SETTINGS
    @given(
        document=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
        inputs=st.none() | json_values | wild_text,
        content_type=st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-8",
                "APPLICATION/JSON",
                None,
                "text/json",
            ]
        ),
    )
    @example(document={}, inputs="\ud800", content_type="application/json")
    @example(document={}, inputs="\x1c\x1d\x1e\x1f", content_type="application/json")
    @example(document={}, inputs="\u0000", content_type="application/json")
    @example(document={"k": "\udfff"}, inputs="ok", content_type="application/json")
    def check(document: dict[str, Any], inputs: Any, content_type: str | None) -> None:
        if inputs is not None:
            document = {**document, "inputs": inputs}
        body = json.dumps(document).encode()
        status, raw = post(fuzz_target, body, content_type)
        assert_sane(fuzz_target, body, status, raw)
        if content_type is None or content_type == "text/json":
            assert status == 415, (body, status, raw)

    check()
    assert_enough_requests()
