"""Run the study end to end: the three notebooks in order with papermill, then one HTML report.

    python -m servebench.pipeline --config quick --set max_rounds=2 --set services=python

The parameters are validated before anything is created (a bad one is refused in one line).
A run writes only into its own directory data/runs/<run-id>/, starting with its resolved
parameters (config.yaml), which each notebook reads. `INCOMPLETE` marks it until it
finishes; `data/runs/latest` moves to it only then. Whatever happens, no service process
started by the run is left behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from servebench import config, metadata, paths
from servebench.config import Study
from servebench.process import RUN_TAG, kill_tagged

KERNEL = "servebench"
NOTEBOOKS = ("01_export_model.ipynb", "02_load_test.ipynb", "03_report.ipynb")


class PipelineError(RuntimeError):
    pass


def new_run_id(study: Study) -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{paths.model_slug(study.model_id)}-{study.config}"


def notebook_parameters(name: str, run_dir: Path) -> dict[str, Any]:
    """What each notebook's `parameters` cell receives: the run's own config and directory."""
    if name.startswith("03"):
        return {"run_dir": str(run_dir)}
    return {"config": str(run_dir / "config.yaml"), "run_dir": str(run_dir)}


def update_latest(run_dir: Path) -> Path:
    """Point data/runs/latest at run_dir atomically (a symlink swapped by rename)."""
    latest = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    tmp.replace(latest)
    return latest


def publish_figures(run_dir: Path, target: Path) -> list[Path]:
    """Copy a finished run's figures to target (the project's figures/, when servebench.readme
    publishes it as the reference run), replacing older ones."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for figure in sorted((run_dir / "figures").glob("*.png")):
        copied.append(Path(shutil.copy2(figure, target / figure.name)))
    return copied


def render_report(run_dir: Path, executed: list[Path]) -> Path:
    """report.html: notebook 03's outputs as one self-contained page (servebench.rendering),
    its banner showing the run's status as metadata.json has it now."""
    from servebench import rendering

    return rendering.render_report(run_dir, executed)


#: Warnings a reader of the console would only learn to ignore: tqdm's, when a library imports
#: its notebook front end without ipywidgets (the kernel inherits this process's environment).
QUIET_WARNINGS = "ignore:IProgress not found"
#: The kernel's own log at ERROR: its warning that its local sockets are unencrypted TCP says
#: nothing about the study.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run_notebooks(run_dir: Path, kernel: str = KERNEL) -> list[Path]:
    """The notebooks in order with papermill. Each notebook's stdout (the progress lines,
    servebench.say) comes to the console as it is written; its stderr (library warnings,
    build output, tracebacks) goes to ``logs/<notebook>.log`` in the run directory."""
    import papermill

    executed_dir = run_dir / "notebooks"
    executed_dir.mkdir(parents=True, exist_ok=True)
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    warnings = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [warnings, QUIET_WARNINGS]))
    executed = []
    for name in NOTEBOOKS:
        output = executed_dir / name
        print(f"== {name} ==", file=sys.stderr, flush=True)
        started = time.perf_counter()
        with (logs / f"{Path(name).stem}.log").open("a") as log:
            papermill.execute_notebook(
                str(paths.NOTEBOOKS / name),
                str(output),
                parameters=notebook_parameters(name, run_dir),
                kernel_name=kernel,
                cwd=str(paths.ROOT),
                log_output=False,
                stdout_file=sys.stderr,
                stderr_file=log,
                progress_bar=False,
                extra_arguments=KERNEL_ARGUMENTS,
            )
        executed.append(output)
        print(f"== {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return executed


def run(study: Study, runs_dir: Path = paths.RUNS, kernel: str = KERNEL) -> Path:
    """Run the study; returns the finished run directory, or raises PipelineError.

    Everything the run makes stays in its directory (``data/runs/latest`` points at the last
    finished one): the project's tracked figures/ and data/reference/ are the published
    reference run's, which only ``servebench.readme`` replaces, so a study run leaves the
    checkout as it found it."""
    run_id = new_run_id(study)
    run_dir = runs_dir / run_id
    if run_dir.exists():
        raise PipelineError(f"{run_dir} exists already; a finished run is never overwritten")
    run_dir.mkdir(parents=True)
    (run_dir / "INCOMPLETE").write_text(
        "this run has not finished (or failed); see metadata.json\n"
    )
    study.write(run_dir / "config.yaml")
    metadata.update(
        run_dir,
        run_id=run_id,
        status="running",
        started=metadata.now_iso(),
        parameters=study.as_dict(),
    )
    os.environ[RUN_TAG] = run_id
    print(f"run directory: {run_dir}", file=sys.stderr, flush=True)
    try:
        executed = run_notebooks(run_dir, kernel)
        # Marked complete before rendering, so the report shows the finished run (status,
        # finished time); should rendering fail, the except below marks the run failed.
        metadata.update(run_dir, status="complete", finished=metadata.now_iso())
        report = render_report(run_dir, executed)
    except BaseException as error:
        metadata.update(
            run_dir,
            status="failed",
            finished=metadata.now_iso(),
            error=f"{type(error).__name__}: {error}"[:2000],
        )
        raise PipelineError(
            f"run {run_id} failed: {first_line(error)}\n"
            f"partial data and the executed notebooks are in {run_dir} "
            "(each notebook's warnings and errors in logs/<notebook>.log)"
        ) from error
    finally:
        leftovers = kill_tagged(run_id)
        if leftovers:
            print(f"stopped {len(leftovers)} leftover process(es): {leftovers}", file=sys.stderr)
    (run_dir / "INCOMPLETE").unlink()
    latest = update_latest(run_dir)
    print(f"report: {report}\nlatest: {latest}", file=sys.stderr)
    return run_dir


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    # papermill wraps the failing cell's exception; its last line names the cause.
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="default", help="configs/<name>.yaml or a path")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--kernel", default=KERNEL)
    parser.add_argument("--runs-dir", type=Path, default=paths.RUNS, help="where runs are written")
    return parser.parse_args(argv)


def stop_on_sigterm(signum: int, _frame: object) -> None:
    # SystemExit unwinds through run(): the run is marked failed and its services stopped.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        study = config.load_study(args.config, args.set)
        run(study, runs_dir=args.runs_dir, kernel=args.kernel)
    except (config.ConfigError, PipelineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
