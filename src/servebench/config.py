"""The study's parameters: one typed object, built once from YAML + overrides, validated there.

    study = config.load_study("quick", ["max_rounds=4", "services=[python]"])

A YAML file in configs/ (which may `extends:` another) gives every parameter; `key=value`
overrides (values parsed as YAML) replace some. `load_study` checks every value for type,
range and existence (services in the registry, payload files, CPUs this machine has, a
local model path) before anything is created, and refuses a bad one with one line naming
the parameter, the value and what is allowed. Every phase reads the resulting `Study`.

The batching policy's parameters (max_batch_size, max_batch_tokens, max_batch_delay_us,
max_queue, max_padding, max_wait_ms, schedule) default to service/batching_policy.json, the file
both batched services take their own defaults from, when a configuration omits them.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from servebench import paths
from servekit.policy import DEFAULTS as BATCH_POLICY
from servekit.policy import SCHEDULES

# Model variants (one model directory each, made by notebook 01 with optimum). fp32 is the
# export itself and every variant's factor is measured against it.
VARIANTS = ("fp32", "optimized", "int8", "int8-static")
#: The variant every other one is compared with.
BASE_VARIANT = "fp32"


class ConfigError(ValueError):
    """A parameter the study cannot use; the message is one line a user can act on."""


def _spec(low: float | None = None, allowed: str = "", empty_ok: bool = False) -> dict[str, Any]:
    """A parameter's check: its lower bound, or the words that say what is allowed (and, for
    a list, whether it may be empty)."""
    return {"low": low, "allowed": allowed, "empty_ok": empty_ok}


@dataclass(frozen=True)
class Study:
    """Every parameter of the study (configs/default.yaml explains each)."""

    model_id: str = field(
        metadata=_spec(allowed="a built-in model, a hub id or an existing local directory")
    )
    opset: int | None = field(metadata=_spec(7))
    variants: list[str] = field(
        metadata=_spec(allowed=f"model variants among {', '.join(VARIANTS)}, fp32 included")
    )
    min_label_agreement: float = field(metadata=_spec(0))
    services: list[str] = field(metadata=_spec(allowed="names from the service registry"))
    seed_point_only: list[str] = field(
        metadata=_spec(allowed="names from the service registry (or [] for none)", empty_ok=True)
    )
    base_variant_only: list[str] = field(
        metadata=_spec(allowed="names from the service registry (or [] for none)", empty_ok=True)
    )
    mixed_services: list[str] = field(
        metadata=_spec(allowed="names from the service registry (or [] for all)", empty_ok=True)
    )
    soak_variants: list[str] = field(
        metadata=_spec(allowed="variants the study measures (or [] for none)", empty_ok=True)
    )
    openloop_services: list[str] = field(
        metadata=_spec(allowed="names from the service registry (or [] for all)", empty_ok=True)
    )
    openloop_variants: list[str] = field(
        metadata=_spec(allowed="variants the study measures (or [] for none)", empty_ok=True)
    )
    server_cpus: str = field(
        metadata=_spec(allowed="a taskset CPU list such as '0' or '0-1', or '' to not pin")
    )
    loadgen_cpus: str = field(
        metadata=_spec(allowed="a taskset CPU list such as '1', or '' to not pin")
    )
    workers: int = field(metadata=_spec(1))
    threads: int = field(metadata=_spec(1))
    payload: str = field(metadata=_spec(allowed="a file name in data/payloads/ without .txt"))
    n_requests: int = field(metadata=_spec(1))
    concurrency: int = field(metadata=_spec(1))
    min_rounds: int = field(metadata=_spec(2))
    max_rounds: int = field(metadata=_spec(2))
    target_ci_pct: float = field(metadata=_spec(0))
    sweep_target_ci_pct: float = field(metadata=_spec(0))
    seed_point_budget_s: float = field(metadata=_spec(0))
    point_budget_s: float = field(metadata=_spec(0))
    seed_table_runs: int = field(metadata=_spec(1))
    shuffle_seed: int = field(metadata=_spec())
    concurrency_levels: list[int] = field(metadata=_spec(1))
    payloads: list[str] = field(metadata=_spec(allowed="file names in data/payloads/ without .txt"))
    payload_levels: list[int] = field(metadata=_spec(1))
    burst_s: float = field(metadata=_spec(0))
    burst_min_per_client: int = field(metadata=_spec(1))
    warmup_requests: int = field(metadata=_spec(0))
    stage_requests: int = field(metadata=_spec(1))
    ceiling_warmup: int = field(metadata=_spec(0))
    unstable_pct: float = field(metadata=_spec(0))
    openloop: bool = field(metadata=_spec())
    openloop_bound_ms: list[float] = field(metadata=_spec(1))
    openloop_duration_s: float = field(metadata=_spec(0.5))
    openloop_max_steps: int = field(metadata=_spec(1))
    soak_s: float = field(metadata=_spec(0))
    soak_concurrency: int = field(metadata=_spec(1))
    ready_timeout_s: float = field(metadata=_spec(1))
    price_instance: str = field(metadata=_spec(allowed="the priced instance's name and source"))
    price_usd_per_hour: float = field(metadata=_spec(0))
    price_cores: int = field(metadata=_spec(1))
    price_memory_gib: float = field(metadata=_spec(0))
    max_batch_size: int = field(metadata=_spec(1))
    max_batch_tokens: int = field(metadata=_spec(1))
    max_batch_delay_us: int = field(metadata=_spec(0))
    max_queue: int = field(metadata=_spec(1))
    max_padding: float = field(metadata=_spec(0))
    max_wait_ms: int = field(metadata=_spec(0))
    schedule: str = field(metadata=_spec())
    batch_sizes: list[int] = field(metadata=_spec(1))
    mixed_requests: int = field(metadata=_spec(0))
    mixed_concurrency_levels: list[int] = field(metadata=_spec(1))
    mixed_seed: int = field(metadata=_spec())
    config: str = "custom"  # the configuration's name, recorded with the run

    @property
    def model_dir(self) -> Path:
        """The fp32 export's directory (the other variants sit beside it)."""
        return paths.default_model_dir(self.model_id)

    def variant_dir(self, variant: str) -> Path:
        return paths.variant_model_dir(self.model_id, variant)

    @property
    def server_cpu_list(self) -> list[int]:
        return cpu_list(self.server_cpus)

    def batching_env(self) -> dict[str, str]:
        """The batching parameters as the environment the batched services read
        (service/CONTRACT.md "Batched services"); the others ignore it."""
        names = (
            "max_batch_size",
            "max_batch_tokens",
            "max_batch_delay_us",
            "max_queue",
            "max_wait_ms",
        )
        env = {name.upper(): str(getattr(self, name)) for name in names}
        return {**env, "MAX_PADDING": repr(self.max_padding), "SCHEDULE": self.schedule}

    def as_dict(self) -> dict[str, Any]:
        """Plain values (what metadata.json records and a run's config.yaml holds)."""
        return dataclasses.asdict(self)

    def write(self, path: Path) -> Path:
        """The resolved parameters as a self-contained YAML file (no `extends`)."""
        path.write_text(yaml.safe_dump(self.as_dict(), sort_keys=False))
        return path


PARAMETERS = tuple(f.name for f in dataclasses.fields(Study) if f.name != "config")


def config_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"}:
        if candidate.is_file():
            return candidate
        raise ConfigError(f"config={str(name_or_path)!r}: no such file")
    named = paths.CONFIGS / f"{name_or_path}.yaml"
    if named.exists():
        return named
    known = ", ".join(sorted(p.stem for p in paths.CONFIGS.glob("*.yaml")))
    raise ConfigError(f"config={str(name_or_path)!r}: unknown; use one of {known} or a .yaml path")


def load(name_or_path: str | Path = "default") -> dict[str, Any]:
    """The raw parameters of a configuration file (its `extends` chain merged)."""
    path = config_path(name_or_path)
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ConfigError(f"config={str(path)!r}: not a mapping of parameters")
    parent = document.pop("extends", None)
    base = load(parent if "/" not in str(parent) else path.parent / parent) if parent else {}
    base.update(document)
    base["config"] = path.stem
    return base


def parse_override(item: str) -> tuple[str, Any]:
    """'key=value' with the value parsed as YAML ('max_rounds=8', 'services=[python]')."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r}: not key=value (e.g. max_rounds=8)")
    try:
        return key, yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"{key}={raw!r}: not a YAML value") from None


def with_overrides(parameters: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    merged = dict(parameters)
    for item in overrides:
        key, value = parse_override(item)
        merged[key] = value
    return merged


def load_study(name_or_path: str | Path = "default", overrides: list[str] | None = None) -> Study:
    """The validated study: configuration file + overrides. Raises ConfigError."""
    return build(with_overrides(load(name_or_path), list(overrides or [])))


def build(parameters: dict[str, Any]) -> Study:
    """A Study from plain values (a run's config.yaml, a test's dict); validated."""
    known = {f.name for f in dataclasses.fields(Study)}
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ConfigError(
            f"{unknown[0]}: unknown parameter; known: {', '.join(sorted(PARAMETERS))}"
        )
    parameters = {"config": "custom", **BATCH_POLICY, **parameters}
    missing = [name for name in PARAMETERS if name not in parameters]
    if missing:
        raise ConfigError(f"{missing[0]}: missing; every configuration must set it")
    values = {f.name: _typed(f, parameters[f.name]) for f in dataclasses.fields(Study)}
    study = Study(**values)
    _check_study(study)
    return study


def from_run(run_dir: Path) -> Study:
    """The study a run was made with (its config.yaml, written before any phase)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"run_dir={str(run_dir)!r}: no config.yaml; is it a run directory?")
    return build(yaml.safe_load(path.read_text()))


def cpu_list(spec: Any) -> list[int]:
    """CPU ids from a taskset-style spec: '0-2,5' -> [0, 1, 2, 5]; also an int or a list.

    Sorted and without repeats; '' or None is the empty list. Raises ValueError on anything
    else (a bool, a negative id, a malformed range)."""
    if spec is None:
        return []
    if isinstance(spec, bool):
        raise ValueError(f"not a CPU list: {spec!r}")
    if isinstance(spec, int):
        items: list[Any] = [str(spec)]
    elif isinstance(spec, str):
        items = spec.replace(" ", ",").split(",")
    elif isinstance(spec, list | tuple | set):
        return sorted({cpu for item in spec for cpu in cpu_list(item)})
    else:
        raise ValueError(f"not a CPU list: {spec!r}")
    cpus: set[int] = set()
    for part in (str(p).strip() for p in items):
        if not part:
            continue
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"not a CPU list: {spec!r}")
        cpus.update(range(int(low), int(high or low) + 1))
    return sorted(cpus)


def usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


# ---------------------------------------------------------------- validation


def _allowed(f: dataclasses.Field[Any]) -> str:
    low, allowed = f.metadata.get("low"), f.metadata.get("allowed")
    if allowed:
        return allowed
    kind = {"int": "an integer", "float": "a number", "bool": "true or false"}.get(
        str(f.type).split(" ")[0].split("[")[0], "a value"
    )
    if str(f.type).startswith("list[int]"):
        kind = "integers"
    return f"{kind} >= {low:g}" if low is not None else kind


def _refuse(f: dataclasses.Field[Any], value: Any, why: str = "") -> ConfigError:
    return ConfigError(f"{f.name}={value!r}: {why or 'must be ' + _allowed(f)}")


def _scalar(f: dataclasses.Field[Any], kind: str, value: Any) -> Any:
    low = f.metadata.get("low")
    if kind == "bool":
        if not isinstance(value, bool):
            raise _refuse(f, value)
        return value
    if kind == "str":
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _refuse(f, value)
        return str(value)
    number_types = (int,) if kind == "int" else (int, float)
    if isinstance(value, bool) or not isinstance(value, number_types):
        raise _refuse(f, value)
    if low is not None and value < low:
        raise _refuse(f, value)
    return value if kind == "int" else float(value)


def _typed(f: dataclasses.Field[Any], value: Any) -> Any:
    """value checked against the field's type and lower bound (YAML gives plain types)."""
    kind = str(f.type)
    if kind.endswith("| None"):
        return None if value is None else _scalar(f, kind.split(" ")[0], value)
    if kind.startswith("list["):
        if isinstance(value, str):  # services=python,rust-native-release
            value = [part.strip() for part in value.split(",") if part.strip()]
        if value is None and f.metadata.get("empty_ok"):
            value = []
        if not isinstance(value, list) or not (value or f.metadata.get("empty_ok")):
            raise _refuse(f, value, f"must be a non-empty list of {_allowed(f)}")
        items = [_scalar(f, kind[5:-1], item) for item in value]
        if len(set(items)) != len(items):
            raise _refuse(f, value, "lists a value twice")
        return items
    return _scalar(f, kind, value)


def _field(name: str) -> dataclasses.Field[Any]:
    return next(f for f in dataclasses.fields(Study) if f.name == name)


def _check_cpus(study: Study) -> None:
    usable = usable_cpus()
    listed: dict[str, list[int]] = {}
    for name in ("server_cpus", "loadgen_cpus"):
        value = getattr(study, name)
        try:
            listed[name] = cpu_list(value)
        except ValueError:
            raise _refuse(_field(name), value) from None
        absent = sorted(set(listed[name]) - set(usable))
        if absent:
            raise _refuse(
                _field(name),
                value,
                f"CPU {absent[0]} is not available here; this machine offers "
                f"{', '.join(map(str, usable))} (or '' to not pin)",
            )
    server, loadgen = listed["server_cpus"], listed["loadgen_cpus"]
    if bool(server) != bool(loadgen):
        raise ConfigError("server_cpus, loadgen_cpus: pin both or neither ('' to not pin)")
    if set(server) & set(loadgen):
        raise ConfigError(
            f"server_cpus={study.server_cpus!r}, loadgen_cpus={study.loadgen_cpus!r}: they "
            "overlap; the servers and the load generator must never share a core"
        )
    budget = study.workers * study.threads
    if server and budget != len(server):
        raise ConfigError(
            f"workers x threads = {budget} but server_cpus={study.server_cpus!r} has "
            f"{len(server)} CPU(s): give every service exactly its cores"
        )


def _check_model(study: Study) -> None:
    if paths.looks_like_path(study.model_id) and not Path(study.model_id).expanduser().is_dir():
        raise _refuse(_field("model_id"), study.model_id, "no such directory")


def _check_study(study: Study) -> None:
    """What needs more than one value, the registry, or the file system."""
    from servebench import registry

    known = registry.load_registry()
    # seed_point_only, base_variant_only, mixed_services and openloop_services may name services
    # the run does not measure (services=[python] with the default lists), but not services that
    # do not exist.
    for name in (
        "services",
        "seed_point_only",
        "base_variant_only",
        "mixed_services",
        "openloop_services",
    ):
        value = getattr(study, name)
        unknown = [service for service in value if service not in known]
        if unknown:
            why = f"unknown service {unknown[0]!r}; known: {', '.join(known)}"
            raise _refuse(_field(name), value, why)
    measured = set(study.services)
    alone = [s for s in study.services if known[s].control and known[s].baseline not in measured]
    if alone:
        why = f"{alone[0]} is an A/A control of {known[alone[0]].baseline}, which is not measured"
        raise _refuse(_field("services"), study.services, why)
    payloads = sorted(p.stem for p in paths.PAYLOADS.glob("*.txt"))
    for name in ("payload", "payloads"):
        value = getattr(study, name)
        absent = [p for p in ([value] if isinstance(value, str) else value) if p not in payloads]
        if absent:
            raise _refuse(
                _field(name), value, f"no payload {absent[0]!r}; known: {', '.join(payloads)}"
            )
    odd = [v for v in study.variants if v not in VARIANTS]
    if odd or "fp32" not in study.variants:
        why = f"unknown variant {odd[0]!r}" if odd else "fp32 must be among them"
        raise _refuse(_field("variants"), study.variants, f"{why}; known: {', '.join(VARIANTS)}")
    # Like seed_point_only, it may name variants the run does not make (variants=[fp32]).
    for name in ("soak_variants", "openloop_variants"):
        odd = [v for v in getattr(study, name) if v not in VARIANTS]
        if odd:
            why = f"unknown variant {odd[0]!r}; known: {', '.join(VARIANTS)}"
            raise _refuse(_field(name), getattr(study, name), why)
    if study.schedule not in SCHEDULES:
        raise _refuse(_field("schedule"), study.schedule, f"must be one of {', '.join(SCHEDULES)}")
    if study.max_padding >= 1:
        raise _refuse(_field("max_padding"), study.max_padding, "must be 0 <= share < 1")
    if study.min_label_agreement > 1:
        raise _refuse(_field("min_label_agreement"), study.min_label_agreement, "must be 0..1")
    if study.max_rounds < study.min_rounds:
        why = f"must be at least min_rounds={study.min_rounds}"
        raise _refuse(_field("max_rounds"), study.max_rounds, why)
    if study.n_requests < study.concurrency:
        raise ConfigError(
            f"n_requests={study.n_requests}: must be at least concurrency={study.concurrency} "
            "(hey sends n // c requests per worker)"
        )
    _check_cpus(study)
    _check_model(study)
