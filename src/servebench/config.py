"""Study parameters: a YAML file in configs/ (which may extend another) plus key=value overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from servebench import paths


class ConfigError(ValueError):
    pass


def config_path(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} and candidate.exists():
        return candidate
    named = paths.CONFIGS / f"{name_or_path}.yaml"
    if named.exists():
        return named
    known = ", ".join(sorted(p.stem for p in paths.CONFIGS.glob("*.yaml")))
    raise ConfigError(f"no configuration {name_or_path!r}; use one of {known} or a .yaml path")


def load(name_or_path: str = "default") -> dict[str, Any]:
    path = config_path(name_or_path)
    document = yaml.safe_load(path.read_text()) or {}
    parent = document.pop("extends", None)
    base = load(parent) if parent else {}
    base.update(document)
    base["config"] = path.stem
    return base


def parse_override(item: str, current: dict[str, Any]) -> tuple[str, Any]:
    """'key=value' with the value parsed as YAML ('repeats=5', 'services=[python]')."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if key not in current:
        raise ConfigError(f"unknown parameter {key!r}; known: {', '.join(sorted(current))}")
    value = yaml.safe_load(raw)
    if isinstance(current[key], list) and isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    return key, value


def with_overrides(parameters: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    merged = dict(parameters)
    for item in overrides:
        key, value = parse_override(item, merged)
        merged[key] = value
    return merged


def validate(parameters: dict[str, Any]) -> None:
    cores = len(cpu_list(parameters["server_cpus"])) if parameters.get("server_cpus") else None
    budget = int(parameters["workers"]) * int(parameters["threads"])
    if cores is not None and budget != cores:
        raise ConfigError(
            f"workers x threads = {budget} but server_cpus {parameters['server_cpus']!r} has "
            f"{cores} core(s): give every service exactly its cores"
        )
    if int(parameters["n_requests"]) < int(parameters["concurrency"]):
        raise ConfigError("n_requests must be at least concurrency (hey's rule)")
    if int(parameters["repeats"]) < 1:
        raise ConfigError("repeats must be at least 1")


def cpu_list(spec: str | int) -> list[int]:
    """'0-2,5' -> [0, 1, 2, 5] (taskset's syntax)."""
    cpus: list[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.extend(range(int(low), int(high) + 1))
        else:
            cpus.append(int(part))
    return cpus
