"""The Python service: FastAPI on uvicorn, one worker by default (as in the seed).

Run: python service/python/app.py --model-dir data/models/minilm-sentiment --port 8080
The HTTP contract is in service/CONTRACT.md; inference lives in inference.py,
which the Rust PyO3 service imports too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

# torch is installed for the exporter only; keep transformers from importing it here.
os.environ.setdefault("USE_TORCH", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import Classifier, ModelDirError, Prediction

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
    """What the routes need: inference.Classifier, or a stand-in in the route tests."""

    def classify(self, text: str) -> Prediction: ...


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
    app = FastAPI(title="servebench python service", docs_url=None, redoc_url=None)

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
        except BadRequest as bad:
            return error_response(bad.status, bad.message)
        # Inference runs in the thread pool so the event loop keeps accepting
        # connections (the seed's async handler blocked it).
        prediction = await run_in_threadpool(classifier.classify, text)
        total_us = (time.perf_counter_ns() - started) // 1000
        return JSONResponse(
            {"label": prediction.label, "score": prediction.score},
            headers={
                "x-tokenization-time": str(prediction.tokenization_us),
                "x-inference-time": str(prediction.inference_us),
                "x-total-time": str(total_us),
            },
        )

    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn's --factory mode, used with several workers."""
    return create_app(
        Classifier(os.environ["MODEL_DIR"], threads=int(os.environ.get("ORT_THREADS", "1")))
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--model-dir", default=env("MODEL_DIR"))
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8080")))
    parser.add_argument("--threads", type=int, default=int(env("ORT_THREADS", "1")))
    parser.add_argument("--workers", type=int, default=int(env("WORKERS", "1")))
    args = parser.parse_args(argv)
    if not args.model_dir:
        parser.error("--model-dir (or MODEL_DIR) is required")
    return args


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    args = parse_args(argv)
    try:
        classifier = Classifier(args.model_dir, threads=args.threads)
    except ModelDirError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.workers == 1:
        app: Any = create_app(classifier)
    else:
        # Worker processes import this module by name, so its folder must be importable.
        here = str(Path(__file__).resolve().parent)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [here, os.environ.get("PYTHONPATH")])
        )
        os.environ.update(MODEL_DIR=str(args.model_dir), ORT_THREADS=str(args.threads))
        app = "app:app_from_environment"
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        factory=args.workers > 1,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    if args.workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()
        Multiprocess(config, sockets=[sock]).run()  # (it takes no `target` argument)
        return 0
    server.run()
    # uvicorn returns (instead of raising) when the port is taken.
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
