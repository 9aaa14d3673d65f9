"""The unbatched Python services: by default the seed's stack, FastAPI on uvicorn (h11, asyncio),
one worker, the transformers tokenizer, each request classified in the thread pool.

Run: python service/python/app.py --model-dir data/models/minilm-sentiment --port 8080
The HTTP contract is in service/CONTRACT.md; its routes are servekit.routes' (FastAPI) or
servekit.asgi's (thin), inference is servekit.inference's (which the Rust PyO3 service calls
too). Each lever a tuned Python stack pulls is a flag (`STACK_FLAGS`), so the registry's
Python services are one program started with different flags, one change at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Protocol

from servekit.inference import Classifier, Prediction
from servekit.server import (
    Predict,
    Reply,
    add_lever,
    load_classifier,
    parse_service_args,
    serve,
    service_parser,
    uvicorn_config,
)

#: The request path's levers and their choices, the seed's first (CONTRACT.md "Command line").
ROUTES = ("fastapi", "thin")  # FastAPI's routing and responses, or servekit.asgi's bare ASGI
INFERENCE_ON = ("pool", "loop")  # a thread-pool hop per request, or on the event loop itself


class Classifies(Protocol):
    """What the unbatched routes need: inference.Classifier, or a stand-in in the route tests."""

    def classify(self, text: str) -> Prediction: ...


def create_app(classifier: Classifies, routes: str = "fastapi", inference_on: str = "pool") -> Any:
    """The unbatched service's ASGI app: `routes` and `inference_on` as in `ROUTES` and
    `INFERENCE_ON`."""

    # Each stack imports only what it runs: the thin one never imports FastAPI or starlette.
    async def on_loop(text: str) -> Reply:
        # One core, one worker: a free event loop buys nothing while the core classifies.
        return Reply(classifier.classify(text))

    predict: Predict = on_loop
    if inference_on == "pool":
        from starlette.concurrency import run_in_threadpool

        async def in_pool(text: str) -> Reply:
            # The seed's handler blocked the event loop; the thread pool keeps it accepting
            # connections, at the cost of a hop per request.
            return Reply(await run_in_threadpool(classifier.classify, text))

        predict = in_pool
    if routes == "thin":
        from servekit.asgi import build_asgi

        return build_asgi(predict)
    from servekit.routes import build_app

    return build_app(predict)


def app_from_environment() -> Any:
    """Factory for uvicorn's --factory mode, used with several workers."""
    args = parse_args(json.loads(os.environ["SERVEKIT_ARGS"]))
    classifier = Classifier(args.model_dir, threads=args.threads, tokenizer_api=args.tokenizer)
    return create_app(classifier, args.routes, args.inference_on)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = service_parser(__doc__.splitlines()[0])
    add_lever(parser, "--routes", ROUTES, "FastAPI (the seed's) or bare ASGI routes with orjson")
    add_lever(
        parser, "--inference-on", INFERENCE_ON, "the thread pool (the seed's hop) or the loop"
    )
    return parse_service_args(parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    classifier = load_classifier(args)
    if classifier is None:
        return 2
    if args.workers == 1:
        return serve(create_app(classifier, args.routes, args.inference_on), args)
    from uvicorn.supervisors import Multiprocess

    # Worker processes import this module by name (the package is installed) and parse the
    # same flags.
    os.environ["SERVEKIT_ARGS"] = json.dumps(sys.argv[1:] if argv is None else argv)
    config = uvicorn_config(f"{__name__}:app_from_environment", args)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()  # (it takes no `target` argument)
    return 0
