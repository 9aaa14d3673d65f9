"""Shared fixtures: the exported default model and real service processes on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiers import pytest_collection_modifyitems, pytest_ignore_collect  # noqa: F401 (pytest hooks)

from servebench import paths, registry
from servebench.process import ServiceProcess

SERVICE_NAMES = list(registry.load_registry())


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The default model, exported once (cached across runs in data/models/)."""
    from servebench.models import export_model

    target = paths.default_model_dir("minilm-sentiment")
    export_model("minilm-sentiment", target, opset=17, cache_dir=paths.MODELS / ".cache")
    return target


@pytest.fixture(scope="session")
def built_services() -> dict[str, registry.Service]:
    services = registry.load_registry()
    for service in services.values():
        registry.build(service)
    return services


@pytest.fixture(scope="session", params=SERVICE_NAMES)
def service(
    request: pytest.FixtureRequest,
    model_dir: Path,
    built_services: dict[str, registry.Service],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    """Each registered service, started once per session as a real process."""
    name = request.param
    log = tmp_path_factory.mktemp("logs") / f"{name}.log"
    with ServiceProcess(built_services[name], model_dir, log, ready_timeout_s=180) as proc:
        yield proc


FIXTURE_REGISTRY = Path(__file__).parent / "fixtures" / "registry.yaml"


def pipeline_command(runs_dir: Path, *overrides: str) -> list[str]:
    """The pipeline with the quick configuration, writing runs under runs_dir."""
    script = (
        "import sys; from pathlib import Path; from servebench import config, pipeline;"
        "study = config.load_study('quick', sys.argv[2:]);"
        "pipeline.run(study, runs_dir=Path(sys.argv[1]))"
    )
    return [sys.executable, "-c", script, str(runs_dir), *overrides]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One end-to-end papermill run of the quick configuration: every service of the
    fixture registry, i.e. the project's services plus `python-twin`, a service added as a
    contributor would (one registry entry), so the run shows it needs no code change."""
    runs = tmp_path_factory.mktemp("runs")
    published = {p.name: p.stat().st_mtime_ns for p in paths.FIGURES.glob("*.png")}
    names = list(registry.load_registry(FIXTURE_REGISTRY))
    env = {**os.environ, "SERVEBENCH_REGISTRY": str(FIXTURE_REGISTRY)}
    command = pipeline_command(runs, f"services=[{','.join(names)}]")
    result = subprocess.run(command, cwd=paths.ROOT, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    after = {p.name: p.stat().st_mtime_ns for p in paths.FIGURES.glob("*.png")}
    assert after == published, "a run outside data/runs/ must leave the project's figures/ alone"
    return (runs / "latest").resolve()
