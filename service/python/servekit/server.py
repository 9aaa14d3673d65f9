"""A Python service's command line and server, without a web framework: the contract's common
flags and the stack's server-level levers (service/CONTRACT.md, "Command line"), the model
loaded as the flags say, uvicorn configured and run; and `Reply`/`Predict`, what every Python
service's routes (servekit.routes on FastAPI, servekit.asgi bare) wait on for an answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from servekit.inference import Classifier, ModelDirError, Prediction
from servekit.tokenize import TOKENIZER_APIS

if TYPE_CHECKING:
    import uvicorn


@dataclass(frozen=True)
class Reply:
    """A text's answer: its prediction and any headers beyond the contract's three timings."""

    prediction: Prediction
    headers: dict[str, str] = field(default_factory=dict)


# How the routes get an answer for a checked text: in the thread pool or on the event loop
# (servekit.service), or from the batching queue (servekit.batched). It may raise Refusal.
Predict = Callable[[str], Awaitable[Reply]]


#: uvicorn's HTTP parsers and event loops a service can be started with, the seed's first.
HTTP_PARSERS = ("h11", "httptools")
EVENT_LOOPS = ("asyncio", "uvloop")
SERVERS = ("uvicorn", "granian")


def service_parser(description: str) -> argparse.ArgumentParser:
    """The contract's common flags (service/CONTRACT.md, "Command line")."""
    parser = argparse.ArgumentParser(description=description)
    env = os.environ.get
    parser.add_argument("--model-dir", default=env("MODEL_DIR"))
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("PORT", "8080")))
    parser.add_argument("--threads", type=int, default=int(env("ORT_THREADS", "1")))
    parser.add_argument("--workers", type=int, default=int(env("WORKERS", "1")))
    # The server's own levers. The defaults are the seed's stack, named rather than left to
    # uvicorn's "auto", which would switch to uvloop and httptools as soon as they are installed.
    add_lever(parser, "--server", SERVERS, "uvicorn (the seed's) or granian, hyper serving the app")
    add_lever(
        parser, "--http", HTTP_PARSERS, "uvicorn's HTTP/1.1 parser: h11 (the seed's) or httptools"
    )
    add_lever(parser, "--loop", EVENT_LOOPS, "the event loop: asyncio's own (the seed's) or uvloop")
    add_lever(
        parser,
        "--tokenizer",
        TOKENIZER_APIS,
        "AutoTokenizer (the seed's) or the tokenizers binding",
    )
    return parser


def add_lever(
    parser: argparse.ArgumentParser, flag: str, choices: tuple[str, ...], help: str
) -> None:
    """A lever of the Python stack (CONTRACT.md "Command line"): its choices, the seed's first
    and the default."""
    parser.add_argument(flag, choices=choices, default=choices[0], help=help)


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
        return Classifier(args.model_dir, threads=args.threads, tokenizer_api=args.tokenizer)
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
        http=args.http,
        loop=args.loop,
        access_log=False,
        log_level="warning",
        # In-flight requests get this long after SIGTERM, within the contract's 5 s.
        timeout_graceful_shutdown=graceful_shutdown_s,
    )


def serve(app: Any, args: argparse.Namespace, graceful_shutdown_s: float = 3.0) -> int:
    """Serves the ASGI `app` in this process (one worker) until SIGTERM/SIGINT; the exit status."""
    if args.server == "granian":
        return serve_granian(app, args)
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, args, graceful_shutdown_s))
    server.run()
    # uvicorn returns (instead of raising) when the port is taken.
    return 0 if server.started else 1


def serve_granian(app: Any, args: argparse.Namespace) -> int:
    """`app` behind granian's embedded server, on this process's event loop (--loop): HTTP/1.1
    parsed by hyper in one Rust runtime thread, the app's Python on the loop, as uvicorn runs
    it. The port is bound first, so a busy one fails as uvicorn's does."""
    import asyncio
    import signal
    import socket

    from granian.constants import HTTPModes, Interfaces
    from granian.server.embed import Server

    with socket.socket() as probe:  # granian would only log a busy port
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            print(f"error: cannot bind {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
    server = Server(
        app,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        http=HTTPModes.http1,
        websockets=False,
        runtime_threads=1,
        log_enabled=False,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, server.stop)
        await server.serve()

    if args.loop == "uvloop":
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())
    return 0
