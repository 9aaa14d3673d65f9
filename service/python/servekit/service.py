"""The Python service: FastAPI on uvicorn, one worker by default (as in the seed).

Run: python service/python/app.py --model-dir data/models/minilm-sentiment --port 8080
The HTTP contract is in service/CONTRACT.md; its routes are servekit.routes', inference is
servekit.inference's (which the Rust PyO3 service calls too). Each request is classified on
its own in the thread pool.
"""

from __future__ import annotations

import argparse
import os
from typing import Protocol

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from servekit.inference import Classifier, Prediction
from servekit.routes import (
    Reply,
    build_app,
    load_classifier,
    parse_service_args,
    serve,
    service_parser,
    uvicorn_config,
)


class Classifies(Protocol):
    """What the unbatched routes need: inference.Classifier, or a stand-in in the route tests."""

    def classify(self, text: str) -> Prediction: ...


def create_app(classifier: Classifies) -> FastAPI:
    """The unbatched service: each request classified on its own in the thread pool."""

    async def predict(text: str) -> Reply:
        # Inference runs in the thread pool so the event loop keeps accepting
        # connections (the seed's async handler blocked it).
        return Reply(await run_in_threadpool(classifier.classify, text))

    return build_app(predict)


def app_from_environment() -> FastAPI:
    """Factory for uvicorn's --factory mode, used with several workers."""
    return create_app(
        Classifier(os.environ["MODEL_DIR"], threads=int(os.environ.get("ORT_THREADS", "1")))
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return parse_service_args(service_parser(__doc__.splitlines()[0]), argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    classifier = load_classifier(args)
    if classifier is None:
        return 2
    if args.workers == 1:
        return serve(create_app(classifier), args)
    from uvicorn.supervisors import Multiprocess

    # Worker processes import this module by name (the package is installed).
    os.environ.update(MODEL_DIR=str(args.model_dir), ORT_THREADS=str(args.threads))
    config = uvicorn_config(f"{__name__}:app_from_environment", args)
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()  # (it takes no `target` argument)
    return 0
