"""The contract's routes, error answers, command line and server, shared by the Python services.

`build_app` wraps a `Predict` (how a checked text gets its answer) in the contract's routes:
the unbatched service (servekit.service) answers in the thread pool, the batched one
(servekit.batched) from its queue. The checks themselves are servekit.contract's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from servekit.inference import Classifier, ModelDirError, Prediction

if TYPE_CHECKING:
    import uvicorn

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


@dataclass(frozen=True)
class Reply:
    """A text's answer: its prediction and any headers beyond the contract's three timings."""

    prediction: Prediction
    headers: dict[str, str] = field(default_factory=dict)


# How the routes get an answer for a checked text: in the thread pool (servekit.service) or
# from the batching queue (servekit.batched). It may raise Refusal for an error answer.
Predict = Callable[[str], Awaitable[Reply]]
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


def build_app(
    predict: Predict,
    *,
    title: str = "servebench python service",
    lifespan: Lifespan | None = None,
) -> FastAPI:
    """The contract's routes and error answers around `predict`, shared by the Python services."""
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

    @app.post("/age", openapi_extra={"requestBody": REQUEST_SCHEMA}, responses=RESPONSES)
    async def age(request: Request) -> JSONResponse:
        started = time.perf_counter_ns()
        try:
            check_content_type(request.headers.get("content-type"))
            text = parse_body(await read_limited_body(request))
            reply = await predict(text)
        except Refusal as refusal:
            return error_response(refusal.status, refusal.message, refusal.headers)
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


def service_parser(description: str) -> argparse.ArgumentParser:
    """The contract's common flags (service/CONTRACT.md, "Command line")."""
    parser = argparse.ArgumentParser(description=description)
    env = os.environ.get
    parser.add_argument("--model-dir", default=env("MODEL_DIR"))
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8080")))
    parser.add_argument("--threads", type=int, default=int(env("ORT_THREADS", "1")))
    parser.add_argument("--workers", type=int, default=int(env("WORKERS", "1")))
    return parser


def parse_service_args(
    parser: argparse.ArgumentParser, argv: list[str] | None = None
) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if not args.model_dir:
        parser.error("--model-dir (or MODEL_DIR) is required")
    return args


def load_classifier(args: argparse.Namespace) -> Classifier | None:
    """The model of --model-dir, or None after printing the contract's one-line error."""
    try:
        return Classifier(args.model_dir, threads=args.threads)
    except ModelDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def uvicorn_config(
    app: Any, args: argparse.Namespace, graceful_shutdown_s: float = 3.0
) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        factory=args.workers > 1,
        access_log=False,
        log_level="warning",
        # In-flight requests get this long after SIGTERM, within the contract's 5 s.
        timeout_graceful_shutdown=graceful_shutdown_s,
    )


def serve(app: FastAPI, args: argparse.Namespace, graceful_shutdown_s: float = 3.0) -> int:
    """Serves `app` in this process (one worker) until SIGTERM/SIGINT; the exit status."""
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, args, graceful_shutdown_s))
    server.run()
    # uvicorn returns (instead of raising) when the port is taken.
    return 0 if server.started else 1
