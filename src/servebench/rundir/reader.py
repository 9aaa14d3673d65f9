"""Read a finished run directory (layout: docs/DATA.md) for the report, compare and README.

* :func:`load_run` - read and validate a run directory into a :class:`Run`; fails with
  :class:`RunDataError` naming what is missing when ``metadata.json``, ``loadtests.csv``
  or ``requests.csv.gz`` is absent or malformed.
* :func:`service_facts` / :func:`read_facts` - each service's label, colour, display
  order, baseline and in-process implementation, from the run's ``services.csv``
  (:mod:`servebench.rundir.facts`).

Every measured file is keyed by (service, **variant**): the model variant a service served
(``fp32``, ``optimized``, ``int8``). Each file passes through :mod:`servebench.rundir.upgrade`
as it is read, so a run written before today's column names reads like a new one; runs made
before interleaving are refused there (their summary.csv is still read as published data).

The reader never changes the measured files. Derived tables are cached on the
:class:`Run` (:meth:`Run.cached`), so a notebook that asks for the same table twice
computes it once.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from servebench import config
from servebench.config import BASE_VARIANT
from servebench.rundir import upgrade
from servebench.rundir.facts import FACT_COLUMNS, read_facts, service_facts, truth
from servebench.rundir.rounds import DEFAULT_UNSTABLE_PCT, Rounds, rounds_of

__all__ = [
    "BASE_VARIANT", "FACT_COLUMNS", "Rounds", "Run", "RunDataError", "load_run", "read_facts",
    "rounds_of", "service_facts",
]  # fmt: skip

#: The seed's point when metadata.json does not say (the seed ran ``hey -n 1000 -c 50``).
DEFAULT_SEED_PAYLOAD = "seed"
DEFAULT_SEED_CONCURRENCY = 50

# The columns the report cannot do without (the rest of docs/DATA.md's are optional to it).
ESSENTIAL_COLUMNS: dict[str, list[str]] = {
    "loadtests.csv": [
        "service", "variant", "payload", "concurrency", "round", "n", "errors", "total_s", "rps",
        "cpu_s_per_req", "peak_rss_mb",
    ],
    "requests.csv.gz": [
        "service", "variant", "payload", "concurrency", "round", "response_time_s", "status_code",
        "offset_s",
    ],
}  # fmt: skip
OPTIONAL_FILES = tuple(
    f"{name}.csv"
    for name in (
        "services", "parity", "stages", "ceiling", "openloop", "soak", "coldstarts", "variants",
    )
)  # fmt: skip
#: The interleaved phase's records (docs/DATA.md): one row per point, and the drift probe.
INTERLEAVED_FILES = ("points", "drift")
#: Whole numbers that may be missing (a nullable integer, never a float).
INTEGER_COLUMNS = ("concurrency", "round", "ceiling_pass", "start")

T = TypeVar("T")


class RunDataError(RuntimeError):
    """An essential file of a run directory is missing or malformed."""


@dataclass
class Run:
    """A loaded run directory. Optional frames are ``None`` when their file is absent.

    ``facts`` has one row per service seen anywhere in the run (index: service name,
    display order), columns :data:`FACT_COLUMNS`. Every measured frame has a ``variant``
    column. ``variants`` is variants.csv (one row per model variant: its faithfulness to
    fp32). ``points`` (points.csv) and ``drift`` (drift.csv) are ``None`` when absent (a
    run that stopped before its first point). ``notes`` collects what the report should
    tell its reader (missing optional inputs, fallbacks).

    An A/A control (services.csv ``control``) measures the run's noise, not a service: its
    hey runs are ``controls`` (loadtests.csv rows), kept out of ``loadtests`` and of every
    other frame, so that only the paired ratios and Stability show it. The seed table's full
    ``hey -n n_requests`` runs (loadtests.csv ``seed_table``) are ``seed_table_bursts``, kept
    out of ``loadtests`` too (the rounds there are the paired ones); ``None`` for a run
    written before they were separate, whose seed-point rounds were all full runs.

    A rung of the ladder (services.csv ``rung``) explains a service rather than being one:
    its hey runs are ``rungs``, kept out of ``loadtests`` like a control's, so that only the
    ladder (:mod:`servebench.analysis.ladder`), the paired ratios and Stability show it; its
    other rows (stage timings, checks) stay, for the ladder's latency decomposition.
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
    coldstarts: pd.DataFrame | None = None
    variants: pd.DataFrame | None = None
    batch_ceiling: pd.DataFrame | None = None
    replay: pd.DataFrame | None = None
    workload: pd.DataFrame | None = None
    core_peak: pd.DataFrame | None = None
    flops: pd.DataFrame | None = None
    points: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None
    controls: pd.DataFrame | None = None
    rungs: pd.DataFrame | None = None
    seed_table_bursts: pd.DataFrame | None = None
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
    def rounds(self) -> Rounds:
        """How often each point was measured: its rounds (points.csv, else the parameters;
        :mod:`servebench.rundir.rounds`)."""
        return rounds_of(self.parameters, self.points)

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
    def latency_bounds_s(self) -> list[float]:
        """The open-loop p99 bounds, tightest first: ``parameters.openloop_bound_ms`` (a list,
        or one number in runs before issue 20), else openloop.csv's ``bound_s``; [] when
        neither is recorded."""
        bound_ms = self.parameters.get("openloop_bound_ms")
        values = bound_ms if isinstance(bound_ms, list) else [bound_ms]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if numbers:
            return sorted(float(v) / 1e3 for v in numbers)
        if self.openloop is not None and "bound_s" in self.openloop:
            return sorted(float(v) for v in self.openloop["bound_s"].dropna().unique())
        return []

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

    def variants_in_order(self, among: Iterable[str] | None = None) -> list[str]:
        """Model variants in display order: fp32 first, then ``parameters.variants``, then
        the study's known variants, then any other (default ``among``: the hey runs)."""
        source = self.loadtests["variant"] if among is None else among
        present = list(dict.fromkeys(str(v) for v in source))
        listed = [str(v) for v in self.parameters.get("variants") or []]
        known = dict.fromkeys([BASE_VARIANT, *listed, *config.VARIANTS])
        ordered = [v for v in known if v in present]
        return ordered + sorted(set(present) - set(ordered))

    def units_in_order(self, among: pd.DataFrame | None = None) -> list[tuple[str, str]]:
        """(service, variant) pairs present in ``among`` (a frame with both columns;
        default: the hey runs), by service display order, then variant order."""
        frame = self.loadtests if among is None else among
        present = set(zip(frame["service"].astype(str), frame["variant"].astype(str), strict=True))
        services = self.services_in_order(s for s, _ in present)
        variants = self.variants_in_order(v for _, v in present)
        return [(s, v) for s in services for v in variants if (s, v) in present]

    def in_display_order(self, frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
        """``frame`` sorted by ``by``: services, variants and payloads in display order,
        other columns ascending (a stable sort; the index is reset)."""
        ranks = {
            "service": self.services_in_order(frame["service"]) if "service" in by else [],
            "variant": self.variants_in_order(frame["variant"]) if "variant" in by else [],
            "payload": self.payloads_in_order(frame["payload"]) if "payload" in by else [],
        }
        rank = {name: {v: i for i, v in enumerate(values)} for name, values in ranks.items()}
        return frame.sort_values(
            by, key=lambda c: c.map(rank[str(c.name)]) if c.name in rank else c, kind="stable"
        ).reset_index(drop=True)

    @property
    def multi_variant(self) -> bool:
        """True when the hey runs measured more than one model variant."""
        return len(self.variants_in_order()) > 1

    def unit_label(self, service: str, variant: str) -> str:
        """'Python · int8'; in a run of one variant just 'Python', as before variants."""
        return f"{self.label(service)} · {variant}" if self.multi_variant else self.label(service)

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


# --------------------------------------------------------------------------- loading


def _read_csv(path: Path) -> pd.DataFrame:
    """A measured file in today's shape (:func:`servebench.rundir.upgrade.upgrade_frame`)."""
    try:
        df = upgrade.upgrade_frame(path.name, pd.read_csv(path))
    except pd.errors.EmptyDataError as exc:
        raise RunDataError(f"{path} is empty") from exc
    for col in ("service", "variant", "payload", "impl"):
        if col in df:
            df[col] = df[col].astype(str)
    for col in INTEGER_COLUMNS:
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
    why = upgrade.unreadable(path, metadata.get("parameters") or {})
    if why:
        raise RunDataError(why)
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
    # Only runs that measured a batched service (the mixed workload) have the first three,
    # runs before the core's peak was measured lack the next two, and a run that stopped
    # before its first point lacks the last two: their absence is no news.
    for name in ("batch_ceiling", "replay", "workload", "core_peak", "flops", *INTERLEAVED_FILES):
        f = path / f"{name}.csv"
        optional[name] = _read_csv(f) if f.is_file() else None
    if optional["drift"] is not None:
        # The probe before the first point belongs to no point: its empty payload stays empty.
        drift = optional["drift"]
        drift["payload"] = drift["payload"].fillna("").replace("nan", "")
    seen = [frames["loadtests.csv"]["service"]]
    seen += [df["service"] for df in optional.values() if df is not None and "service" in df]
    facts, fact_notes = service_facts(pd.concat(seen), optional["services"])
    controls = set(facts.index[facts["control"]])
    loadtests = frames["loadtests.csv"]
    is_control = loadtests["service"].isin(controls)
    is_rung = loadtests["service"].isin(set(facts.index[facts["rung"]]))
    table = loadtests["seed_table"].map(truth) if "seed_table" in loadtests else False
    is_table = ~is_control & ~is_rung & table
    for name, frame in optional.items():
        if frame is not None and name != "services" and "service" in frame:
            optional[name] = frame[~frame["service"].isin(controls)].reset_index(drop=True)
    run = Run(
        path=path,
        metadata=metadata,
        loadtests=loadtests[~is_control & ~is_rung & ~is_table].reset_index(drop=True),
        controls=loadtests[is_control].reset_index(drop=True) if is_control.any() else None,
        rungs=loadtests[is_rung & ~table].reset_index(drop=True) if is_rung.any() else None,
        seed_table_bursts=loadtests[is_table].reset_index(drop=True) if is_table.any() else None,
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
    measured = set(run.variants_in_order())
    missing = [str(v) for v in run.parameters.get("variants") or [] if str(v) not in measured]
    if missing:
        run.notes.append(f"variant(s) {', '.join(missing)} listed in parameters have no hey run")
    if BASE_VARIANT not in measured:
        run.notes.append(f"no {BASE_VARIANT} hey run: no variant factor, no seed table")
    present = set(lt["service"])
    for service in run.services_in_order():
        base = run.baseline(service)
        if base and base not in present:
            run.notes.append(f"{service}'s baseline {base!r} is absent: no difference for it")
