"""A minimal keep-alive HTTP client for verification and per-stage timings (not for load)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any

# The contract's per-stage timing headers (µs) and the names the study records them under.
STAGE_HEADERS = {
    "x-tokenization-time": "tokenization_us",
    "x-inference-time": "inference_us",
    "x-total-time": "handler_us",
}
# What batched services add (service/CONTRACT.md "Batched services"); empty for the others.
BATCH_HEADERS = {
    "x-batch-size": "batch_size",
    "x-queue-time": "queue_us",
}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]
    elapsed_us: int


class Client:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        started = time.perf_counter_ns()
        try:
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError) as refused:
                # A server may answer a body it refuses (413, 415) before reading all of it
                # and close, so the rest of the body cannot be sent; its answer is already
                # on the wire, and a client should read it (as curl does).
                if self.connection.sock is None:
                    raise
                try:
                    response = self.connection.getresponse()
                except (http.client.HTTPException, OSError):
                    raise refused from None
            else:
                response = self.connection.getresponse()
            raw = response.read()
        except (http.client.HTTPException, ConnectionError):
            self.connection.close()
            raise
        elapsed = (time.perf_counter_ns() - started) // 1000
        try:
            parsed: Any = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            parsed = raw
        if response.getheader("connection", "").lower() == "close":
            self.connection.close()
        return Answer(
            status=response.status,
            body=parsed,
            headers={k.lower(): v for k, v in response.getheaders()},
            elapsed_us=elapsed,
        )

    def classify(self, text: str) -> Answer:
        body = json.dumps({"inputs": text}).encode()
        return self.request("POST", "/age", body, {"Content-Type": "application/json"})

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stage_times(answer: Answer) -> dict[str, int | None]:
    """The service's own per-stage timings (microseconds) from the x-*-time headers, and a
    batched service's batch size and queue wait (None for a service that does not batch)."""
    try:
        times: dict[str, int | None] = {
            column: int(answer.headers[header]) for header, column in STAGE_HEADERS.items()
        }
    except (KeyError, ValueError) as missing:
        raise ValueError(f"response lacks a valid stage-timing header: {missing}") from None
    for header, column in BATCH_HEADERS.items():
        value = answer.headers.get(header, "")
        times[column] = int(value) if value.isdigit() else None
    return times
