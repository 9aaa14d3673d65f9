"""service/contract_cases.json: well-formed, mirrored by CONTRACT.md's error table, and
answered by the Python service's routes in-process (no model: a stand-in classifier).

The Rust kit runs the same file through its routes (servekit/src/http.rs); every service,
as a real process, runs it in tests/test_contract.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from contract_cases import ContractCase, case_body, contract_cases
from fastapi.testclient import TestClient

from servebench import paths
from servekit import service
from servekit.inference import Prediction

pytestmark = pytest.mark.unit

CASES = contract_cases()


def contract_error_table() -> set[tuple[int, str]]:
    """(status, message start) of each row of the table under CONTRACT.md's `## Errors`."""
    text = (paths.SERVICE / "CONTRACT.md").read_text()
    section = text.split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|[^|\n]*\|\s*(\d{3})\s*\|\s*`([^`]+)`\s*\|$", section, re.M)
    assert rows, "CONTRACT.md has no error table"
    return {(int(status), message) for status, message in rows}


def test_cases_are_well_formed() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for case in CASES:
        assert re.fullmatch(r"[a-z0-9-]+", case.id), case.id
        assert case.method in {"GET", "POST", "PUT", "DELETE"}, case
        assert case.path.startswith("/"), case
        assert 400 <= case.status < 500 and case.error, case


def test_body_parts() -> None:
    assert case_body(None) is None
    assert case_body("é") == "é".encode()
    assert case_body(["{", {"hex": "ff00"}, {"repeat": "ab", "times": 2}]) == b"{\xff\x00abab"
    with pytest.raises(ValueError, match="unknown body part"):
        case_body([{"hex": "ff", "times": 1}])


def test_contract_md_table_matches_the_cases() -> None:
    assert contract_error_table() == {(case.status, case.error) for case in CASES}


class StandIn:
    """Answers every text without a model: the routes, not inference, are under test."""

    def classify(self, text: str) -> Any:
        return Prediction("POSITIVE", 0.75, 1, 2)


@pytest.fixture(scope="module")
def python_routes() -> TestClient:
    return TestClient(service.create_app(StandIn()))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_python_routes_answer_each_case(python_routes: TestClient, case: ContractCase) -> None:
    response = python_routes.request(
        case.method, case.path, content=case.body, headers=case.headers
    )
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert set(body) == {"error"} and body["error"].startswith(case.error), body


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_the_unbatched_routes_have_no_stats(python_routes: TestClient, method: str) -> None:
    """/stats is the batched services' alone: elsewhere it is an unknown path (404)."""
    response = python_routes.request(method, "/stats")
    assert (response.status_code, response.json()) == (404, {"error": "not found"})
