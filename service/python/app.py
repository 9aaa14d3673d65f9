"""The Python service: FastAPI on uvicorn, one worker by default (as in the seed).

Run: python service/python/app.py --model-dir data/models/minilm-sentiment --port 8080
The HTTP contract is in service/CONTRACT.md; inference lives in inference.py,
which the Rust PyO3 service imports too. The batched service (service/python-batched/app.py)
serves the same routes, checks and command line from here (`build_app`, `service_parser`,
`load_classifier`, `serve`) with its own `Predict`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

# torch is installed for the exporter only; keep transformers from importing it here.
os.environ.setdefault("USE_TORCH", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import Classifier, ModelDirError, Prediction

if TYPE_CHECKING:
    import uvicorn

MAX_BODY_BYTES = 1_048_576
TOO_LARGE = f"request body exceeds {MAX_BODY_BYTES} bytes"

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


class Classifies(Protocol):
    """What the unbatched routes need: inference.Classifier, or a stand-in in the route tests."""

    def classify(self, text: str) -> Prediction: ...


@dataclass(frozen=True)
class Reply:
    """A text's answer: its prediction and any headers beyond the contract's three timings."""

    prediction: Prediction
    headers: dict[str, str] = field(default_factory=dict)


# How the routes get an answer for a checked text: in the thread pool (this service) or from
# the batching queue (service/python-batched). It may raise Refusal for an error answer.
Predict = Callable[[str], Awaitable[Reply]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Refusal(Exception):
    """An error answer: `{"error": message}` with `status` and extra `headers`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class BadRequest(Refusal):
    """A request the contract's checks refuse (4xx)."""


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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


def create_app(classifier: Classifies) -> FastAPI:
    """The unbatched service: each request classified on its own in the thread pool."""

    async def predict(text: str) -> Reply:
        # Inference runs in the thread pool so the event loop keeps accepting
        # connections (the seed's async handler blocked it).
        return Reply(await run_in_threadpool(classifier.classify, text))

    return build_app(predict)


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


def app_from_environment() -> FastAPI:
    """Factory for uvicorn's --factory mode, used with several workers."""
    return create_app(
        Classifier(os.environ["MODEL_DIR"], threads=int(os.environ.get("ORT_THREADS", "1")))
    )


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_service_args(service_parser(__doc__.splitlines()[0]), argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    classifier = load_classifier(args)
    if classifier is None:
        return 2
    if args.workers == 1:
        return serve(create_app(classifier), args)
    from uvicorn.supervisors import Multiprocess

    # Worker processes import this module by name, so its folder must be importable.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    os.environ.update(MODEL_DIR=str(args.model_dir), ORT_THREADS=str(args.threads))
    config = uvicorn_config("app:app_from_environment", args)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()  # (it takes no `target` argument)
    return 0


if __name__ == "__main__":
    sys.exit(main())
