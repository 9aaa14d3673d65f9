"""The HTTP contract's request checks and error answers (service/CONTRACT.md), Python side.

Pure (the standard library only): both Python services refuse and answer alike because both
check a request here; the Rust services' twin is service/rust/servekit/src/request.rs.
"""

from __future__ import annotations

import json
from typing import Any

MAX_BODY_BYTES = 1_048_576
TOO_LARGE = f"request body exceeds {MAX_BODY_BYTES} bytes"


class Refusal(Exception):
    """An error answer: `{"error": message}` with `status` and extra `headers`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class BadRequest(Refusal):
    """A request the contract's checks refuse (4xx)."""


def is_json_content_type(header: str | None) -> bool:
    if not header:
        return False
    return header.split(";", 1)[0].strip().lower() == "application/json"


def reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


# Unicode White_Space, as Rust's str::trim uses: Python's str.strip() also strips the
# control characters U+001C..U+001F, which would make the services disagree.
UNICODE_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# serde_json refuses a 128th level of nesting: so does this service.
MAX_JSON_DEPTH = 127


def finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number out of range: {literal[:20]}")
    return value


def check_document(document: Any) -> None:
    """Refuse what strict JSON parsers refuse: deep nesting and unpaired surrogates."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                value.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"nesting deeper than {MAX_JSON_DEPTH}")
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items)


def check_content_type(header: str | None) -> None:
    """The contract checks the content type first, before reading the body."""
    if not is_json_content_type(header):
        raise BadRequest(415, "content type must be application/json")


def parse_body(body: bytes) -> str:
    """The text of a body already within the size limit, checked in the contract's order."""
    if not body:
        raise BadRequest(400, "request body is empty")
    try:
        document = json.loads(
            body.decode("utf-8"), parse_constant=reject_constant, parse_float=finite_float
        )
        check_document(document)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError/EncodeError, NaN/Infinity,
        # out-of-range numbers and integers over Python's digit limit.
        raise BadRequest(400, f"malformed JSON: {exc}") from None
    if not isinstance(document, dict):
        raise BadRequest(422, "request body must be a JSON object")
    if "inputs" not in document:
        raise BadRequest(422, "missing field 'inputs'")
    text = document["inputs"]
    if not isinstance(text, str):
        raise BadRequest(422, "field 'inputs' must be a string")
    if not text.strip(UNICODE_WHITESPACE):
        raise BadRequest(422, "field 'inputs' must not be empty")
    return text
