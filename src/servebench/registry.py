"""The service registry (service/registry.yaml): every fact about each service.

How to build, launch and check it, and how the study shows and compares it (label, colour,
order, what runs in process, its baseline). `SERVEBENCH_REGISTRY` names another registry
file (the test suite's fixture registry adds a service that way, without code changes).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from servebench import paths

REGISTRY_FILE = Path(os.environ.get("SERVEBENCH_REGISTRY", paths.SERVICE / "registry.yaml"))


class RegistryError(RuntimeError):
    """An unknown service, or a registry entry that cannot be used."""


class BuildError(RuntimeError):
    """A service could not be built; the message says what to install or fix."""


@dataclass(frozen=True)
class BuildStep:
    command: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Service:
    name: str
    label: str
    language: str
    inference: str
    family: str
    profile: str
    color: str
    order: int
    baseline: str
    folder: str
    command: list[str]
    ready: str = "/health"
    binary: str | None = None
    build: BuildStep | None = None
    env: dict[str, str] = field(default_factory=dict)
    size_paths: list[str] = field(default_factory=list)
    size_packages: list[str] = field(default_factory=list)
    ceiling: list[str] = field(default_factory=list)
    # A batched service queues requests for one inference thread (CONTRACT.md "Batched
    # services"); `twin` is the unbatched service it is compared with, `batch_ceiling` the
    # command measuring its batch path in process at several batch sizes, `replay` the one
    # passing a workload through its queue and inference thread in process.
    batching: bool = False
    twin: str = ""
    batch_ceiling: list[str] = field(default_factory=list)
    replay: list[str] = field(default_factory=list)
    # An A/A control (registry.yaml `control`): its baseline again, in a second process.
    control: bool = False
    # The ladder (registry.yaml `step_from`, `rung`): the service this one adds one change to;
    # a rung is a step of the ladder only, measured for the ladder's ratios alone.
    step_from: str = ""
    rung: bool = False

    @property
    def bounded(self) -> bool:
        """Held against its inference kind's in-process limit: every service but an A/A
        control (it measures the noise) and a rung (a step of the ladder)."""
        return not (self.control or self.rung)

    def binary_path(self) -> Path | None:
        return paths.ROOT / self.binary if self.binary else None

    def facts(self) -> dict[str, Any]:
        """What a run records about the service (services.csv) for the report and compare."""
        return {
            "service": self.name,
            "label": self.label,
            "language": self.language,
            "inference": self.inference,
            "family": self.family,
            "build": self.profile,
            "color": self.color,
            "order": self.order,
            "baseline": self.baseline,
            "batching": self.batching,
            "twin": self.twin,
            "control": self.control,
            "step_from": self.step_from,
            "rung": self.rung,
        }


def venv_python() -> Path:
    return paths.VENV / "bin" / "python"


def site_packages() -> Path:
    found = sorted((paths.VENV / "lib").glob("python3*/site-packages"))
    if not found:
        raise RegistryError(f"no site-packages under {paths.VENV}; run `make setup` first")
    return found[0]


def onnxruntime_library() -> Path:
    """The libonnxruntime.so.<version> inside the venv's onnxruntime wheel (shared with Rust)."""
    pattern = str(site_packages() / "onnxruntime" / "capi" / "libonnxruntime.so.*")
    candidates = sorted(glob.glob(pattern))
    if not candidates:
        raise RegistryError(
            f"no ONNX Runtime shared library matches {pattern}; "
            "install the pinned requirements (`make setup`)"
        )
    return Path(candidates[-1])


def placeholders(**extra: Any) -> dict[str, str]:
    values = {
        "root": str(paths.ROOT),
        "venv": str(paths.VENV),
        "python": str(venv_python()),
        "PATH": os.environ.get("PATH", ""),
    }
    values.update({key: str(value) for key, value in extra.items()})
    return values


def render(template: str, values: dict[str, str]) -> str:
    try:
        return template.format(**values)
    except KeyError as missing:
        raise RegistryError(f"registry placeholder {missing} has no value") from None


def _parse(name: str, entry: dict[str, Any]) -> Service:
    build = entry.get("build")
    size = entry.get("size") or {}
    missing = [
        key
        for key in ("label", "order", "color", "language", "inference", "family", "folder")
        if key not in entry
    ]
    if missing:
        raise RegistryError(f"registry entry {name!r} lacks {', '.join(missing)}")
    return Service(
        name=name,
        label=str(entry["label"]),
        language=str(entry["language"]),
        inference=str(entry["inference"]),
        family=str(entry["family"]),
        profile=str(entry.get("profile", "-")),
        color=str(entry["color"]),
        order=int(entry["order"]),
        baseline=str(entry.get("baseline") or ""),
        folder=str(entry["folder"]),
        command=[str(part) for part in entry["command"]],
        ready=str(entry.get("ready", "/health")),
        binary=entry.get("binary"),
        build=BuildStep(
            command=[str(p) for p in build["command"]],
            cwd=str(build.get("cwd", ".")),
            env={str(k): str(v) for k, v in (build.get("env") or {}).items()},
        )
        if build
        else None,
        env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
        ceiling=[str(part) for part in entry.get("ceiling") or []],
        batching=bool(entry.get("batching", False)),
        twin=str(entry.get("twin") or ""),
        batch_ceiling=[str(part) for part in entry.get("batch_ceiling") or []],
        replay=[str(part) for part in entry.get("replay") or []],
        control=bool(entry.get("control", False)),
        step_from=str(entry.get("step_from") or ""),
        rung=bool(entry.get("rung", False)),
        size_paths=[str(p) for p in size.get("paths", [])],
        size_packages=[str(p) for p in size.get("packages", [])],
    )


def _entries(path: Path) -> dict[str, Any]:
    """A registry file's entries; `extends: <file>` (relative to it) starts from another's."""
    document = yaml.safe_load(path.read_text()) or {}
    parent = document.get("extends")
    entries = _entries((path.parent / parent).resolve()) if parent else {}
    entries.update(document.get("services") or {})
    return entries


def load_registry(path: Path = REGISTRY_FILE) -> dict[str, Service]:
    services = {name: _parse(name, entry) for name, entry in _entries(Path(path)).items()}
    providers: dict[str, str] = {}
    for service in services.values():
        provider = providers.setdefault(service.inference, service.name) if service.ceiling else ""
        if provider and provider != service.name:
            raise RegistryError(
                f"registry entries {providers[service.inference]!r} and {service.name!r} both "
                f"give the {service.inference!r} in-process ceiling; keep one `ceiling`"
            )
        for fact in ("baseline", "twin", "step_from"):
            other = getattr(service, fact)
            if other and other not in services:
                raise RegistryError(
                    f"registry entry {service.name!r}: {fact} {other!r} is not a service"
                )
        if service.control and (not service.baseline or service.batching or service.ceiling):
            raise RegistryError(
                f"registry entry {service.name!r}: an A/A control (control: true) repeats its "
                "baseline: it needs a `baseline` and measures no ceiling and no batching"
            )
        if service.rung and (not service.step_from or service.batching or service.ceiling):
            raise RegistryError(
                f"registry entry {service.name!r}: a rung (rung: true) is one step of the "
                "ladder: it needs `step_from` and measures no ceiling and no batching"
            )
        if not service.batching == bool(service.batch_ceiling) == bool(service.replay):
            raise RegistryError(
                f"registry entry {service.name!r}: a batched service (batching: true) and only "
                "one gives `batch_ceiling` and `replay`, the commands measuring its batch path "
                "and its queue in process"
            )
    _check_ladder(services)
    # The inference kinds are those some entry measures in process (its `ceiling`).
    for service in services.values():
        if service.inference not in providers:
            raise RegistryError(
                f"registry entry {service.name!r}: inference {service.inference!r} has no "
                f"in-process ceiling: no entry of inference {service.inference!r} gives a "
                f"`ceiling` command (kinds with one: {', '.join(providers) or 'none'})"
            )
    return services


def _check_ladder(services: dict[str, Service]) -> None:
    """Each `step_from` chain ends at a service that steps from none (the ladder's foot)."""
    for service in services.values():
        seen = [service.name]
        while services[seen[-1]].step_from:
            seen.append(services[seen[-1]].step_from)
            if seen[-1] in seen[:-1]:
                raise RegistryError(f"registry: step_from goes round ({' -> '.join(seen)})")


def inference_kinds(registry: dict[str, Service] | None = None) -> tuple[str, ...]:
    """The registry's inference kinds, in entry order: each is measured in process by the
    `ceiling` command of one entry (load_registry checks every entry's kind has one)."""
    registry = registry if registry is not None else load_registry()
    return tuple(dict.fromkeys(s.inference for s in registry.values() if s.ceiling))


def select(
    names: list[str] | str | None, registry: dict[str, Service] | None = None
) -> list[Service]:
    """Services by name, in the order given; None or 'all' means every registered service."""
    registry = registry if registry is not None else load_registry()
    if names is None or names == "all" or names == ["all"]:
        return list(registry.values())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise RegistryError(
            f"unknown service(s) {', '.join(unknown)}; known: {', '.join(registry)}"
        )
    return [registry[n] for n in names]


def ceiling_provider(inference: str, registry: dict[str, Service] | None = None) -> Service:
    """The service whose `ceiling` command measures the in-process ceiling of `inference`."""
    registry = registry if registry is not None else load_registry()
    for service in registry.values():
        if service.inference == inference and service.ceiling:
            return service
    raise RegistryError(f"no registry entry gives the {inference!r} in-process ceiling")


def command_values(service: Service, **extra: Any) -> dict[str, str]:
    """Placeholder values for one service's commands ({binary}, {ort_lib} and `extra`)."""
    commands = [*service.command, *service.ceiling, *service.batch_ceiling, *service.replay]
    uses = " ".join([*commands, *service.size_paths])
    return placeholders(
        binary=service.binary_path() or "",
        ort_lib=onnxruntime_library() if "{ort_lib}" in uses else "",
        **extra,
    )


def launch_command(
    service: Service, *, model_dir: Path, host: str, port: int, threads: int, workers: int
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that start one service."""
    values = command_values(
        service,
        model_dir=model_dir.resolve(),
        host=host,
        port=port,
        threads=threads,
        workers=workers,
    )
    argv = [render(part, values) for part in service.command]
    env = dict(os.environ)
    env.update({key: render(value, values) for key, value in service.env.items()})
    # One thread for everything the service does besides its intra-op pool.
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("OMP_NUM_THREADS", str(threads))
    return argv, env


def build(service: Service, *, log: Any = sys.stderr) -> float:
    """Build a service if it has a build step; returns seconds taken (fast when cached)."""
    if service.build is None:
        return 0.0
    step = service.build
    if step.command[0] == "cargo" and shutil.which("cargo") is None:
        raise BuildError(
            "cargo is not installed: install Rust with rustup (https://rustup.rs) or "
            "`conda env create -f environment.yml`, then run `make setup`"
        )
    values = placeholders()
    env = dict(os.environ)
    env.update({key: render(value, values) for key, value in step.env.items()})
    started = time.perf_counter()
    print(f"building {service.name}: {' '.join(step.command)}", file=log, flush=True)
    result = subprocess.run(
        step.command,
        cwd=paths.ROOT / step.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-30:])
        raise BuildError(f"building {service.name} failed ({' '.join(step.command)}):\n{tail}")
    binary = service.binary_path()
    if binary is not None and not binary.is_file():
        raise BuildError(f"building {service.name} succeeded but {binary} is missing")
    return time.perf_counter() - started
