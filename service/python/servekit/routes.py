"""The contract's routes and error answers on FastAPI, shared by the seed's Python services.

`build_app` wraps a `Predict` (servekit.server: how a checked text gets its answer) in the
contract's routes: the unbatched service (servekit.service) answers in the thread pool, the
batched one (servekit.batched) from its queue. The checks themselves are servekit.contract's;
servekit.asgi is the same contract without a framework.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from servekit.contract import (
    MAX_BODY_BYTES,
    TOO_LARGE,
    BadRequest,
    Refusal,
    check_content_type,
    parse_body,
)
from servekit.server import Predict, Reply

REQUEST_SCHEMA: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {"inputs": {"type": "string", "minLength": 1}},
            }
        }
    },
}

RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The predicted label and its softmax probability",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["label", "score"],
                    "properties": {"label": {"type": "string"}, "score": {"type": "number"}},
                }
            }
        },
    },
    **{
        code: {
            "description": text,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["error"],
                        "properties": {"error": {"type": "string"}},
                    }
                }
            },
        }
        for code, text in (
            (400, "Empty body or malformed JSON"),
            (413, "Body over 1 MiB"),
            (415, "Content type is not application/json"),
            (422, "Valid JSON of the wrong shape"),
        )
    },
}


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def read_limited_body(request: Request) -> bytes:
    """Read at most one byte over the limit, so a huge body is refused without buffering it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(413, TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


async def until_answered_or_gone(request: Request, answer: Awaitable[Reply]) -> Reply:
    """`answer`, cancelled when the client closes its connection first (ClientGone): a queued
    request nobody waits for is then skipped. The body has been read, so the server's next
    message can only be `http.disconnect`. A handler cancelled meanwhile (shutdown) cancels
    `answer` and says what it says (its refusal)."""
    work = asyncio.ensure_future(answer)
    gone = asyncio.ensure_future(request.receive())
    try:
        await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        gone.cancel()
        work.cancel()
        return await work
    if work.done():
        gone.cancel()
        return work.result()
    work.cancel()
    await asyncio.wait((work,))
    if not work.cancelled():
        work.exception()  # what it says to a client that has left matters to no one
    raise ClientGone


def run_counts_route(run_counts: Callable[[], dict[str, int]]) -> Callable[[], Awaitable[Any]]:
    """`GET /stats`: the counts as they are, read on the event loop (no thread hop)."""

    async def stats() -> dict[str, int]:
        return run_counts()

    return stats


def build_app(
    predict: Predict,
    *,
    title: str = "servebench python service",
    lifespan: Lifespan | None = None,
    watch_client: bool = False,
    run_counts: Callable[[], dict[str, int]] | None = None,
) -> FastAPI:
    """The contract's routes and error answers around `predict`, shared by the Python services.
    With `watch_client`, a request whose client disconnects while it waits is cancelled (the
    batched service's queue then skips it); it costs a task per request, so the unbatched
    service, whose request is already running, goes without. With `run_counts` (the batched
    service's), `GET /stats` answers what it returns; without, /stats is an unknown path."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "not found", 405: "method not allowed"}
        return error_response(exc.status_code, messages.get(exc.status_code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid request")

    @app.exception_handler(Exception)
    async def unexpected_error(_: Request, exc: Exception) -> JSONResponse:
        logging.getLogger("servebench").error("internal error: %s", type(exc).__name__)
        return error_response(500, "internal error")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if run_counts is not None:
        app.add_api_route("/stats", run_counts_route(run_counts), methods=["GET"])

    @app.post("/age", openapi_extra={"requestBody": REQUEST_SCHEMA}, responses=RESPONSES)
    async def age(request: Request) -> JSONResponse:
        started = time.perf_counter_ns()
        try:
            check_content_type(request.headers.get("content-type"))
            text = parse_body(await read_limited_body(request))
            if watch_client:
                reply = await until_answered_or_gone(request, predict(text))
            else:
                reply = await predict(text)
        except Refusal as refusal:
            return error_response(refusal.status, refusal.message, refusal.headers)
        except ClientGone:
            # Nobody reads it; 499 as nginx logs a request its client closed.
            return error_response(499, "client closed request")
        prediction = reply.prediction
        total_us = (time.perf_counter_ns() - started) // 1000
        return JSONResponse(
            {"label": prediction.label, "score": prediction.score},
            headers={
                "x-tokenization-time": str(prediction.tokenization_us),
                "x-inference-time": str(prediction.inference_us),
                "x-total-time": str(total_us),
                **reply.headers,
            },
        )

    return app
