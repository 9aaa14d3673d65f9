"""Command-line verbs behind the Makefile: build, export, serve, run, compare."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from servebench import paths, registry
from servebench.process import PortBusyError, port_is_free


def cmd_build(args: argparse.Namespace) -> int:
    services = registry.select(args.services or None)
    for service in services:
        seconds = registry.build(service)
        if service.build is not None:
            print(f"{service.name}: built in {seconds:.1f} s -> {service.binary}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from servebench.models.faithfulness import check_agreement, measure_faithfulness
    from servebench.models.variant_build import export_variants
    from servebench.models.variants import VariantError

    if paths.looks_like_path(args.model_id) and not Path(args.model_id).expanduser().is_dir():
        print(f"error: model_id={args.model_id!r}: no such directory", file=sys.stderr)
        return 2
    output = Path(args.output_dir) if args.output_dir else paths.default_model_dir(args.model_id)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        results = export_variants(
            args.model_id,
            variants,
            opset=args.opset,
            cache_dir=paths.MODELS / ".cache",
            output_dir=output,
        )
        # A variant the services would serve must give fp32's labels (fp32 alone: no check).
        faithful = measure_faithfulness(results) if len(results) > 1 else {}
        for name, result in results.items():
            line = f"{name}: {result.output_dir}, {result.onnx_mb:.1f} MB"
            line += " (reused)" if result.skipped else ""
            if name in faithful:
                f = faithful[name]
                line += f", label agreement {f.label_agreement:.1%}"
                line += ", batch-invariant" if f.batch_invariant else ", moved by batch-mates"
                line += "" if f.batch_invariant else f" (up to {f.batch_max_abs_diff:.2g})"
            print(line, file=sys.stderr)
        for measured in faithful.values():
            check_agreement(measured, args.min_label_agreement)
    except VariantError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Build if needed, then replace this process with the service (foreground, Ctrl-C stops)."""
    (service,) = registry.select([args.service])
    model_dir = Path(args.model_dir) if args.model_dir else paths.default_model_dir(args.model_id)
    from servebench.models.serving_info import is_complete

    if not is_complete(model_dir):
        print(
            f"error: no exported model in {model_dir}; run `make model MODEL={args.model_id}` "
            "(or `make report`) first",
            file=sys.stderr,
        )
        return 2
    if not port_is_free(args.host, args.port):
        print(f"error: {PortBusyError.__name__}: port {args.port} is in use", file=sys.stderr)
        return 2
    registry.build(service)
    argv, env = registry.launch_command(
        service,
        model_dir=model_dir,
        host=args.host,
        port=args.port,
        threads=args.threads,
        workers=args.workers,
    )
    print(f"serving {service.name} on http://{args.host}:{args.port}/age", file=sys.stderr)
    os.chdir(paths.ROOT)
    os.execvpe(argv[0], argv, env)


def cmd_run(args: argparse.Namespace) -> int:
    from servebench import pipeline

    overrides = [part for item in args.set for part in ("--set", item)]
    return pipeline.main(["--config", args.config, *overrides])


def cmd_compare(args: argparse.Namespace) -> int:
    from servebench import compare

    return compare.main([args.run_a, args.run_b, *(["--out", args.out] if args.out else [])])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="servebench", description=__doc__)
    verbs = top.add_subparsers(dest="verb", required=True)

    build = verbs.add_parser("build", help="build the services that need it (cargo)")
    build.add_argument("services", nargs="*", help="names from service/registry.yaml")
    build.set_defaults(func=cmd_build)

    export = verbs.add_parser("export", help="export a model to ONNX with optimum")
    export.add_argument("--model-id", default="minilm-sentiment")
    export.add_argument("--output-dir", default="")
    export.add_argument("--opset", type=int, default=17)
    export.add_argument(
        "--variants", default="fp32", help="comma-separated: fp32, optimized, int8 (fp32 always)"
    )
    export.add_argument(
        "--min-label-agreement",
        type=float,
        default=0.99,
        help="refuse a variant that gives fp32's label on fewer of the sentiment sentences",
    )
    export.set_defaults(func=cmd_export)

    serve = verbs.add_parser("serve", help="run one service in the foreground")
    serve.add_argument("--service", default="python")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--threads", type=int, default=1)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--model-id", default="minilm-sentiment")
    serve.add_argument("--model-dir", default="")
    serve.set_defaults(func=cmd_serve)

    run = verbs.add_parser("run", help="the whole study (papermill)")
    run.add_argument("--config", default="default")
    run.add_argument("--set", action="append", default=[])
    run.set_defaults(func=cmd_run)

    compare = verbs.add_parser("compare", help="two run directories side by side")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    compare.add_argument("--out", default="")
    compare.set_defaults(func=cmd_compare)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (registry.RegistryError, registry.BuildError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
