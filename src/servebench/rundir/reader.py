"""Read a finished run directory (layout: docs/DATA.md) for the report, compare and README.

* :func:`load_run` - read and validate a run directory into a :class:`Run`; fails with
  :class:`RunDataError` naming what is missing when ``metadata.json``, ``loadtests.csv``
  or ``requests.csv.gz`` is absent or malformed.
* :func:`service_facts` / :func:`read_facts` - each service's label, colour, display
  order, baseline and in-process implementation, from the run's ``services.csv``.

The reader never changes the measured files. Derived tables are cached on the
:class:`Run` (:meth:`Run.cached`), so a notebook that asks for the same table twice
computes it once.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from servebench import config, registry
from servebench.analysis.stats import DEFAULT_UNSTABLE_PCT

#: The seed's point when metadata.json does not say (the seed ran ``hey -n 1000 -c 50``).
DEFAULT_SEED_PAYLOAD = "seed"
DEFAULT_SEED_CONCURRENCY = 50

#: What services.csv says about each service besides its measurements (registry.facts()).
FACT_COLUMNS: tuple[str, ...] = (
    "label", "language", "inference", "family", "build", "color", "order", "baseline",
)  # fmt: skip

# The columns the report cannot do without (the rest of docs/DATA.md's are optional to it).
ESSENTIAL_COLUMNS: dict[str, list[str]] = {
    "loadtests.csv": [
        "service", "payload", "concurrency", "repeat", "n", "errors", "total_s", "rps",
        "cpu_s_per_req", "peak_rss_mb",
    ],
    "requests.csv.gz": [
        "service", "payload", "concurrency", "repeat", "response_time_s", "status_code",
        "offset_s",
    ],
}  # fmt: skip
OPTIONAL_FILES = tuple(
    f"{name}.csv" for name in ("services", "parity", "stages", "ceiling", "openloop", "soak")
)

T = TypeVar("T")


class RunDataError(RuntimeError):
    """An essential file of a run directory is missing or malformed."""


@dataclass
class Run:
    """A loaded run directory. Optional frames are ``None`` when their file is absent.

    ``facts`` has one row per service seen anywhere in the run (index: service name,
    display order), columns :data:`FACT_COLUMNS`. ``notes`` collects what the report
    should tell its reader (missing optional inputs, fallbacks).
    """

    path: Path
    metadata: dict[str, Any]
    loadtests: pd.DataFrame
    requests: pd.DataFrame
    facts: pd.DataFrame
    services: pd.DataFrame | None = None
    parity: pd.DataFrame | None = None
    stages: pd.DataFrame | None = None
    ceiling: pd.DataFrame | None = None
    openloop: pd.DataFrame | None = None
    soak: pd.DataFrame | None = None
    seed_payload: str = DEFAULT_SEED_PAYLOAD
    seed_concurrency: int = DEFAULT_SEED_CONCURRENCY
    unstable_pct: float = DEFAULT_UNSTABLE_PCT
    notes: list[str] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- metadata
    @property
    def parameters(self) -> dict[str, Any]:
        return self.metadata.get("parameters") or {}

    @property
    def model_id(self) -> str:
        model = self.metadata.get("model") or {}
        return str(model.get("id") or self.parameters.get("model_id", "?"))

    @property
    def machine(self) -> dict[str, Any]:
        return self.metadata.get("machine") or {}

    @property
    def pinning(self) -> dict[str, Any]:
        return self.metadata.get("pinning") or {}

    @property
    def server_cores(self) -> int:
        """Number of CPUs in ``pinning.server_cpus`` (falls back to workers x threads, then 1)."""
        try:
            cpus = config.cpu_list(self.pinning.get("server_cpus"))
        except ValueError:
            cpus = []
        if cpus:
            return len(cpus)
        w, t = self.pinning.get("workers"), self.pinning.get("threads")
        if isinstance(w, int) and isinstance(t, int):
            return max(1, w * t)
        return 1

    @property
    def context(self) -> str:
        """'model · CPU, N cores · server CPUs ...' for figure titles."""
        cpu = self.machine.get("cpu_model", "unknown CPU")
        cores = self.machine.get("cores", "?")
        server = self.pinning.get("server_cpus", "?")
        return f"{self.model_id} · {cpu}, {cores} cores · server CPUs {server}"

    @property
    def latency_bound_s(self) -> float:
        """The open-loop p99 bound: ``parameters.openloop_bound_ms``, else openloop.csv's
        ``bound_s``; NaN when neither is recorded."""
        bound_ms = self.parameters.get("openloop_bound_ms")
        if isinstance(bound_ms, int | float) and not isinstance(bound_ms, bool):
            return float(bound_ms) / 1e3
        if self.openloop is not None and "bound_s" in self.openloop:
            bounds = self.openloop["bound_s"].dropna()
            if len(bounds):
                return float(bounds.iloc[0])
        return math.nan

    # -- services and payloads
    def services_in_order(self, among: Iterable[str] | None = None) -> list[str]:
        """Services in display order: those of ``among`` (default: the hey runs)."""
        present = set(self.loadtests["service"] if among is None else among)
        return [s for s in self.facts.index if s in present]

    def payloads_in_order(self, among: Iterable[str] | None = None) -> list[str]:
        """Seed payload first, then the order of ``parameters.payloads``, then the rest."""
        source = self.loadtests["payload"] if among is None else among
        present = list(dict.fromkeys(str(p) for p in source))
        listed = [str(p) for p in self.parameters.get("payloads") or []]
        ordered = [p for p in dict.fromkeys([self.seed_payload, *listed]) if p in present]
        return ordered + sorted(set(present) - set(ordered))

    def fact(self, service: str, name: str) -> Any:
        return self.facts.at[service, name]

    def label(self, service: str) -> str:
        return str(self.fact(service, "label")) if service in self.facts.index else service

    def baseline(self, service: str) -> str:
        """The service this one is compared with ('' for a baseline itself)."""
        return str(self.fact(service, "baseline"))

    # -- bookkeeping
    def note(self, message: str) -> None:
        """Record something the reader of the report should know (once), and warn."""
        if message not in self.notes:
            self.notes.append(message)
            warnings.warn(message, stacklevel=3)

    def cached(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per run; later calls return the same object."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


# --------------------------------------------------------------------------- service facts


def _registry_facts(path: Path | None) -> dict[str, dict[str, Any]]:
    services = registry.load_registry(path) if path else registry.load_registry()
    return {name: service.facts() for name, service in services.items()}


def service_facts(
    services: Iterable[str],
    table: pd.DataFrame | None = None,
    registry_file: Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Each service's facts, from ``table`` (a services.csv) first, else the registry.

    Returns ``(facts, notes)``: one row per service (index: service, sorted by ``order``),
    columns :data:`FACT_COLUMNS`. Runs made before services.csv carried every fact, or
    without services.csv, take the missing ones from the current registry
    (``registry_file``, default ``service/registry.yaml`` or ``SERVEBENCH_REGISTRY``), and
    a note says so. A service known to neither is shown by its name, after the others,
    without an in-process ceiling, and compared with the run's one root baseline.
    """
    names = list(dict.fromkeys(str(s) for s in services))
    given = pd.DataFrame(columns=["service"]) if table is None else table
    given = given.drop_duplicates("service").set_index("service")
    lacking = [c for c in FACT_COLUMNS if c not in given.columns]
    known: dict[str, dict[str, Any]] | None = None
    rows: dict[str, dict[str, Any]] = {}
    filled, unknown = [], []
    for name in names:
        row = {c: given.at[name, c] for c in FACT_COLUMNS if c in given and name in given.index}
        row = {k: v for k, v in row.items() if not pd.isna(v)}
        # An empty CSV cell reads as NaN: in a described service's baseline it means "none".
        if "baseline" in given and len(row) == len(FACT_COLUMNS) - 1 and "baseline" not in row:
            row["baseline"] = ""
        if len(row) < len(FACT_COLUMNS):
            known = _registry_facts(registry_file) if known is None else known
            if name in known:
                row = {**{c: known[name][c] for c in FACT_COLUMNS}, **row}
                filled.append(name)
            else:
                unknown.append(name)
        rows[name] = row
    notes = []
    if filled:
        where = f"services.csv lacks {', '.join(lacking) or 'rows'}"
        where = "services.csv is missing" if table is None else where
        notes.append(
            f"{where}: facts of {', '.join(filled)} (label, colour, order, baseline, "
            "inference) taken from the current service registry"
        )
    facts = _complete(rows, unknown, notes)
    return facts, notes


def _complete(
    rows: dict[str, dict[str, Any]], unknown: list[str], notes: list[str]
) -> pd.DataFrame:
    """Defaults for services nobody describes, then the frame in display order."""
    orders = [int(r["order"]) for r in rows.values() if "order" in r]
    after = max(orders, default=-1) + 1
    roots = [s for s, r in rows.items() if r.get("baseline") == "" and s not in unknown]
    root = roots[0] if len(roots) == 1 else ""
    for i, name in enumerate(sorted(unknown)):
        defaults = {"label": name, "language": "", "inference": "", "family": name}
        defaults.update(build="-", color="", order=after + i, baseline=root)
        rows[name] = {**defaults, **rows[name]}
    if unknown:
        notes.append(
            f"service(s) {', '.join(sorted(unknown))} are in neither services.csv nor the "
            "registry: shown by name, without an in-process ceiling"
            + (f", compared with {root}" if root else ", compared with no baseline")
        )
    facts = pd.DataFrame.from_dict(rows, orient="index", columns=list(FACT_COLUMNS))
    facts["order"] = facts["order"].astype(int)
    for column in (c for c in FACT_COLUMNS if c != "order"):
        facts[column] = facts[column].fillna("").astype(str)
    facts.index.name = "service"
    return facts.sort_values("order", kind="stable")


def read_facts(run_dir: str | Path, services: Iterable[str]) -> tuple[pd.DataFrame, list[str]]:
    """:func:`service_facts` for a directory holding a services.csv (or not): a run, or
    published data such as data/reference/ that has no raw files."""
    path = Path(run_dir) / "services.csv"
    return service_facts(services, pd.read_csv(path) if path.is_file() else None)


# --------------------------------------------------------------------------- loading


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise RunDataError(f"{path} is empty") from exc
    for col in ("service", "payload", "impl"):
        if col in df:
            df[col] = df[col].astype(str)
    for col in ("concurrency", "repeat"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    return df


def _read_essentials(path: Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    missing = [f for f in ("metadata.json", *ESSENTIAL_COLUMNS) if not (path / f).is_file()]
    if missing:
        raise RunDataError(
            f"{path} lacks essential file(s) {', '.join(missing)}; the load test did not "
            "finish writing this run (see docs/DATA.md)"
        )
    try:
        metadata = json.loads((path / "metadata.json").read_text())
    except json.JSONDecodeError as exc:
        raise RunDataError(f"{path / 'metadata.json'} is not valid JSON: {exc}") from exc
    frames: dict[str, pd.DataFrame] = {}
    for name, cols in ESSENTIAL_COLUMNS.items():
        df = _read_csv(path / name)
        lacking = [c for c in cols if c not in df.columns]
        if lacking:
            raise RunDataError(f"{path / name} lacks column(s) {', '.join(lacking)}")
        if df.empty:
            raise RunDataError(f"{path / name} has no rows")
        frames[name] = df
    return metadata, frames


def _seed_point(params: dict[str, Any]) -> tuple[str, int]:
    payload = params.get("seed_payload") or params.get("payload")
    concurrency = params.get("seed_concurrency") or params.get("concurrency")
    if not isinstance(concurrency, int) or isinstance(concurrency, bool):
        concurrency = DEFAULT_SEED_CONCURRENCY
    return (payload if isinstance(payload, str) else DEFAULT_SEED_PAYLOAD), concurrency


def load_run(
    run_dir: str | Path | Run,
    seed_payload: str | None = None,
    seed_concurrency: int | None = None,
    unstable_pct: float | None = None,
) -> Run:
    """Read a run directory (a :class:`Run` is returned as is).

    The seed configuration (the one summary.csv describes) is, in order: the arguments,
    ``metadata.parameters`` ``seed_payload``/``seed_concurrency``, ``payload``/
    ``concurrency`` (the load test's names), else ``"seed"`` and 50. The unstable
    threshold: the argument, else ``parameters.unstable_pct``, else 10 %.
    """
    if isinstance(run_dir, Run):
        return run_dir
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDataError(f"run directory {path} does not exist")
    metadata, frames = _read_essentials(path)
    params = metadata.get("parameters") or {}
    default_payload, default_concurrency = _seed_point(params)
    if unstable_pct is None:
        unstable_pct = float(params.get("unstable_pct", DEFAULT_UNSTABLE_PCT))
    optional: dict[str, pd.DataFrame | None] = {}
    notes = []
    for name in OPTIONAL_FILES:
        f = path / name
        optional[name.removesuffix(".csv")] = _read_csv(f) if f.is_file() else None
        if not f.is_file():
            notes.append(f"{name} is missing: the parts that need it are skipped")
    seen = [frames["loadtests.csv"]["service"]]
    seen += [df["service"] for df in optional.values() if df is not None and "service" in df]
    facts, fact_notes = service_facts(pd.concat(seen), optional["services"])
    run = Run(
        path=path,
        metadata=metadata,
        loadtests=frames["loadtests.csv"],
        requests=frames["requests.csv.gz"],
        facts=facts,
        seed_payload=str(seed_payload or default_payload),
        seed_concurrency=int(seed_concurrency or default_concurrency),
        unstable_pct=float(unstable_pct),
        notes=notes + fact_notes,
        **optional,
    )
    _check_run(run)
    return run


def _check_run(run: Run) -> None:
    """Notes for a partial run; an error when the seed point, the report's core, is absent."""
    incomplete = (run.path / "INCOMPLETE").exists()
    if run.metadata.get("status") != "complete" or incomplete:
        run.notes.append(
            f"run status is {run.metadata.get('status')!r}"
            + (" and INCOMPLETE is present" if incomplete else "")
            + ": numbers may be partial"
        )
    lt = run.loadtests
    seed_rows = lt[
        (lt["payload"] == run.seed_payload) & (lt["concurrency"] == run.seed_concurrency)
    ]
    if seed_rows.empty:
        have = lt[["payload", "concurrency"]].drop_duplicates().to_records(index=False)
        raise RunDataError(
            f"no hey run at the seed configuration (payload {run.seed_payload!r}, "
            f"concurrency {run.seed_concurrency}); configurations present: {list(have)}"
        )
    present = set(lt["service"])
    for service in run.services_in_order():
        base = run.baseline(service)
        if base and base not in present:
            run.notes.append(f"{service}'s baseline {base!r} is absent: no difference for it")
