"""The contract's routes as a bare ASGI application: no framework between the server and the
handler, replies serialized with orjson.

What an engineer tuning the Python service would write instead of FastAPI (the `thin` routes
of servekit.service): routing is two string comparisons, the request checks and error answers
are servekit.contract's (the same functions the FastAPI routes call, so both answer every
contract case alike), and the body is read with the same 1 MiB limit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from servekit.contract import MAX_BODY_BYTES, TOO_LARGE, BadRequest, Refusal, check_content_type
from servekit.contract import parse_body as parse_body_std
from servekit.server import Predict

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = (b"content-type", b"application/json")
HEALTH = orjson.dumps({"status": "ok"})


class ClientGone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


def parse_body(body: bytes) -> str:
    """servekit.contract.parse_body's answer for every body, orjson's speed for the usual one:
    a small object whose `inputs` is a non-blank string and whose other values hold no number
    or nesting orjson and the contract could judge differently. Anything else (every refusal
    included) goes to the contract's own parser, so the answers stay exactly its."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return parse_body_std(body)
    if type(document) is dict and len(document) == 1:
        text = document.get("inputs")
        if type(text) is str and text.strip() and text.isprintable():
            return text
    return parse_body_std(body)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The body, refused (413) as soon as it declares or reaches one byte over the limit."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise BadRequest(413, TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadRequest(413, TOO_LARGE)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def reply(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON, (b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def refuse(send: Send, refusal: Refusal) -> None:
    extra = [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
    await reply(send, refusal.status, orjson.dumps({"error": refusal.message}), extra)


async def lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop (the model is loaded before the server starts)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def build_asgi(predict: Predict) -> ASGIApp:
    """The contract's routes around `predict` (servekit.server.Predict), as one ASGI callable."""

    async def age(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter_ns()
        try:
            check_content_type(header(scope, b"content-type"))
            text = parse_body(await read_body(scope, receive))
            answer = await predict(text)
        except Refusal as refusal:
            await refuse(send, refusal)
            return
        except ClientGone:
            return
        prediction = answer.prediction
        body = orjson.dumps({"label": prediction.label, "score": prediction.score})
        total_us = (time.perf_counter_ns() - started) // 1000
        headers = [
            (b"x-tokenization-time", str(prediction.tokenization_us).encode()),
            (b"x-inference-time", str(prediction.inference_us).encode()),
            (b"x-total-time", str(total_us).encode()),
            *((k.encode(), v.encode()) for k, v in answer.headers.items()),
        ]
        await reply(send, 200, body, headers)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        try:
            if path == "/age":
                if method == "POST":
                    await age(scope, receive, send)
                else:
                    await refuse(send, Refusal(405, "method not allowed"))
            elif path == "/health":
                if method == "GET":
                    await reply(send, 200, HEALTH)
                else:
                    await refuse(send, Refusal(405, "method not allowed"))
            else:
                await refuse(send, Refusal(404, "not found"))
        except Exception as exc:  # the contract: a 500 naming nothing, and the service goes on
            logging.getLogger("servebench").error("internal error: %s", type(exc).__name__)
            await refuse(send, Refusal(500, "internal error"))

    return app
