"""Tables and figures of one run directory (layout: docs/DATA.md).

Reads the files the load test wrote and writes ``summary.csv``, ``per_config.csv`` and
PNG figures; never changes the measured data. Entry points:

* :func:`load_run` - read and validate a run directory (fails clearly when
  ``metadata.json``, ``loadtests.csv`` or ``requests.csv.gz`` is missing).
* :func:`build_summary` - one row per service at the seed payload and concurrency.
* :func:`per_config` - service x payload x concurrency medians with spreads.
* :func:`seed_table`, :func:`difference_table`, :func:`seed_comparison` - the seed's view.
* ``fig_*`` and :func:`make_figures` - figures; each saves a PNG and returns its path
  (``None`` plus a note in ``run.notes`` when an optional input is missing).

How repeats are combined (one rule everywhere): every statistic (hey's Total, Slowest,
Fastest, Average, Requests/sec, the latency percentiles, CPU per request) is computed per
hey run (one repeat) from that run's raw rows, and the report gives the median across
repeats; Requests/sec and p99 also carry min, max, spread and a bootstrap interval.
Latencies include every answer hey recorded (any status), as hey itself does; errors are
counted separately.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from servebench import stats

# --------------------------------------------------------------------------- constants

SEED_PAYLOAD = "seed"
SEED_CONCURRENCY = 50
BASELINE = "python"
UNSTABLE_PCT = stats.DEFAULT_UNSTABLE_PCT

SUMMARY_COLUMNS: list[str] = [
    "service",
    "label",
    "n",
    "errors",
    "total_s",
    "slowest_s",
    "fastest_s",
    "average_s",
    "rps",
    "rps_min",
    "rps_max",
    "p50_s",
    "p90_s",
    "p99_s",
    "p999_s",
    "difference_pct",
    "repeats",
    "spread_pct",
    "unstable",
    "ceiling_rps",
    "efficiency",
    "overhead_ms",
    "cpu_s_per_req",
    "peak_rss_mb",
    "cold_start_s",
    "size_mb",
    "max_rate_under_bound",
]

SERVICE_ORDER: list[str] = [
    "python",
    "rust-ffi-debug",
    "rust-ffi-release",
    "rust-native-debug",
    "rust-native-release",
]

#: One fixed colour per service in every figure: Python blue, Rust+PyO3 orange, native
#: Rust purple; debug builds light, release builds dark.
SERVICE_COLORS: dict[str, str] = {
    "python": "#1f77b4",
    "rust-ffi-debug": "#ffbb78",
    "rust-ffi-release": "#ff7f0e",
    "rust-native-debug": "#c5b0d5",
    "rust-native-release": "#9467bd",
}
_EXTRA_COLORS = ["#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#d62728"]

#: The seed study's published table (README "Results CPU", a g4dn.xlarge, CPU only,
#: ``hey -n 1000 -c 50``, one run, no warm-up). Reference data, NOT our measurements.
#: The seed's Rust services called Python through PyO3, so they map to our rust-ffi-*.
SEED_PUBLISHED: dict[str, Any] = {
    "source": "seed README, 'Results CPU' (g4dn.xlarge, hey -n 1000 -c 50, single run)",
    "columns": {
        "Python": "python",
        "Rust Debug": "rust-ffi-debug",
        "Rust Release": "rust-ffi-release",
    },
    "rows": {
        "Total": {
            "Python": 19.6106,
            "Rust Debug": 15.1139,
            "Rust Release": 12.4402,
            "Difference": -36.47,
        },
        "Slowest": {
            "Python": 1.2322,
            "Rust Debug": 1.3775,
            "Rust Release": 0.6992,
            "Difference": -43.12,
        },
        "Fastest": {
            "Python": 0.0631,
            "Rust Debug": 0.0153,
            "Rust Release": 0.0145,
            "Difference": -76.33,
        },
        "Average": {
            "Python": 0.9287,
            "Rust Debug": 0.7399,
            "Rust Release": 0.6069,
            "Difference": -34.45,
        },
        "Requests/sec": {
            "Python": 50.9929,
            "Rust Debug": 80.2993,
            "Rust Release": 80.3849,
            "Difference": 57.46,
        },
    },
}

#: Seed-table row -> summary.csv column.
SEED_ROWS: dict[str, str] = {
    "Total": "total_s",
    "Slowest": "slowest_s",
    "Fastest": "fastest_s",
    "Average": "average_s",
    "Requests/sec": "rps",
}

ESSENTIAL_COLUMNS: dict[str, list[str]] = {
    "loadtests.csv": [
        "service",
        "payload",
        "concurrency",
        "repeat",
        "n",
        "errors",
        "total_s",
        "rps",
        "cpu_s_per_req",
        "peak_rss_mb",
    ],
    "requests.csv.gz": [
        "service",
        "payload",
        "concurrency",
        "repeat",
        "response_time_s",
        "status_code",
        "offset_s",
    ],
}
OPTIONAL_FILES = (
    "services.csv",
    "parity.csv",
    "stages.csv",
    "ceiling.csv",
    "openloop.csv",
    "soak.csv",
)


class RunDataError(RuntimeError):
    """An essential file of a run directory is missing or malformed."""


# --------------------------------------------------------------------------- loading


@dataclass
class Run:
    """A loaded run directory. Optional frames are ``None`` when their file is absent."""

    path: Path
    metadata: dict[str, Any]
    loadtests: pd.DataFrame
    requests: pd.DataFrame
    services: pd.DataFrame | None = None
    parity: pd.DataFrame | None = None
    stages: pd.DataFrame | None = None
    ceiling: pd.DataFrame | None = None
    openloop: pd.DataFrame | None = None
    soak: pd.DataFrame | None = None
    seed_payload: str = SEED_PAYLOAD
    seed_concurrency: int = SEED_CONCURRENCY
    baseline: str = BASELINE
    unstable_pct: float = UNSTABLE_PCT
    notes: list[str] = field(default_factory=list)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- metadata helpers
    @property
    def model_id(self) -> str:
        model = self.metadata.get("model") or {}
        return str(model.get("id") or self.metadata.get("parameters", {}).get("model_id", "?"))

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
            cpus = stats.parse_cpu_list(self.pinning.get("server_cpus"))
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
        """'model on CPU (N cores), server CPUs ...' for figure titles."""
        cpu = self.machine.get("cpu_model", "unknown CPU")
        cores = self.machine.get("cores", "?")
        server = self.pinning.get("server_cpus", "?")
        return f"{self.model_id} · {cpu}, {cores} cores · server CPUs {server}"

    def services_in_order(self) -> list[str]:
        present = set(self.loadtests["service"])
        ordered = [s for s in SERVICE_ORDER if s in present]
        return ordered + sorted(present - set(ordered))

    def payloads_in_order(self) -> list[str]:
        """Seed payload first, then the order of ``parameters.payloads``, then the rest."""
        present = list(dict.fromkeys(self.loadtests["payload"]))
        listed = (self.metadata.get("parameters") or {}).get("payloads") or []
        known = ["seed", "short", "medium", "long"]
        ordered = [self.seed_payload, *[str(p) for p in listed], *known]
        out = [p for p in dict.fromkeys(ordered) if p in present]
        return out + sorted(set(present) - set(out))

    def label(self, service: str) -> str:
        if self.services is not None and "label" in self.services:
            hit = self.services.loc[self.services["service"] == service, "label"]
            if len(hit) and isinstance(hit.iloc[0], str) and hit.iloc[0]:
                return hit.iloc[0]
        return service

    def colors(self) -> dict[str, str]:
        return service_colors(self.services_in_order())

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)
            warnings.warn(message, stacklevel=3)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise RunDataError(f"{path} is empty") from exc


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    for col in ("service", "payload", "impl"):
        if col in df:
            df[col] = df[col].astype(str)
    for col in ("concurrency", "repeat"):
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    return df


def load_run(
    run_dir: str | Path | Run,
    seed_payload: str | None = None,
    seed_concurrency: int | None = None,
    unstable_pct: float = UNSTABLE_PCT,
) -> Run:
    """Read a run directory. Raises :class:`RunDataError` naming any missing essential file.

    The seed configuration (the one summary.csv describes) is, in order: the arguments,
    ``metadata.parameters`` ``seed_payload``/``seed_concurrency``, ``payload``/
    ``concurrency`` (the load test's names), else ``"seed"`` and 50.
    """
    if isinstance(run_dir, Run):
        return run_dir
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDataError(f"run directory {path} does not exist")
    missing = [
        f for f in ("metadata.json", "loadtests.csv", "requests.csv.gz") if not (path / f).is_file()
    ]
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
        df = _normalise(_read_csv(path / name))
        lacking = [c for c in cols if c not in df.columns]
        if lacking:
            raise RunDataError(f"{path / name} lacks column(s) {', '.join(lacking)}")
        if df.empty:
            raise RunDataError(f"{path / name} has no rows")
        frames[name] = df
    params = metadata.get("parameters") or {}
    if seed_payload is None:
        seed_payload = params.get("seed_payload") or params.get("payload")
        seed_payload = seed_payload if isinstance(seed_payload, str) else SEED_PAYLOAD
    if seed_concurrency is None:
        seed_concurrency = params.get("seed_concurrency") or params.get("concurrency")
        if not isinstance(seed_concurrency, int) or isinstance(seed_concurrency, bool):
            seed_concurrency = SEED_CONCURRENCY
    run = Run(
        path=path,
        metadata=metadata,
        loadtests=frames["loadtests.csv"],
        requests=frames["requests.csv.gz"],
        seed_payload=str(seed_payload),
        seed_concurrency=int(seed_concurrency),
        unstable_pct=unstable_pct,
    )
    for name in OPTIONAL_FILES:
        f = path / name
        attr = name.removesuffix(".csv")
        if f.is_file():
            setattr(run, attr, _normalise(_read_csv(f)))
        else:
            run.notes.append(f"{name} is missing: the parts that need it are skipped")
    if metadata.get("status") != "complete" or (path / "INCOMPLETE").exists():
        run.notes.append(
            f"run status is {metadata.get('status')!r}"
            + (" and INCOMPLETE is present" if (path / "INCOMPLETE").exists() else "")
            + ": numbers may be partial"
        )
    seed_rows = run.loadtests[
        (run.loadtests["payload"] == run.seed_payload)
        & (run.loadtests["concurrency"] == run.seed_concurrency)
    ]
    if seed_rows.empty:
        have = run.loadtests[["payload", "concurrency"]].drop_duplicates().to_records(index=False)
        raise RunDataError(
            f"no hey run at the seed configuration (payload {run.seed_payload!r}, "
            f"concurrency {run.seed_concurrency}); configurations present: {list(have)}"
        )
    if run.baseline not in set(run.loadtests["service"]):
        run.notes.append(f"baseline service {run.baseline!r} is absent: no Difference column")
    return run


def service_colors(services: Iterable[str]) -> dict[str, str]:
    """Fixed colours for known services; unknown ones take the next colour of a cycle."""
    out: dict[str, str] = {}
    extra = 0
    for s in services:
        if s in SERVICE_COLORS:
            out[s] = SERVICE_COLORS[s]
        else:
            out[s] = _EXTRA_COLORS[extra % len(_EXTRA_COLORS)]
            extra += 1
    return out


# --------------------------------------------------------------------------- tables


KEY = ["service", "payload", "concurrency", "repeat"]
CONFIG = ["service", "payload", "concurrency"]


def per_run(run: Run | str | Path) -> pd.DataFrame:
    """One row per hey run: hey's table recomputed from the raw rows, percentiles, resources.

    ``total_s`` is hey's Total from loadtests.csv; ``rps`` = answers / Total (hey's
    definition); ``errors`` = max(non-2xx answers + requests missing from the CSV,
    loadtests.csv ``errors``), so an error is never under-counted.
    """
    run = load_run(run)
    if "per_run" in run._cache:
        return run._cache["per_run"]
    groups = {k: g for k, g in run.requests.groupby(KEY, sort=False)}
    rows = []
    for lt in run.loadtests.itertuples(index=False):
        key = (lt.service, lt.payload, lt.concurrency, lt.repeat)
        req = groups.get(key)
        if req is None:
            req = run.requests.iloc[0:0]
            run.note(f"no request rows for hey run {key}; counted as all errors")
        hey = stats.hey_run_table(req, total_s=float(lt.total_s), n_expected=int(lt.n))
        pct = stats.percentiles(req["response_time_s"].to_numpy(float))
        row = dict(zip(KEY, key, strict=True))
        row.update(
            order=getattr(lt, "order", np.nan),
            n=int(lt.n),
            errors=max(hey.errors, int(lt.errors) if not pd.isna(lt.errors) else 0),
            responses=hey.responses,
            total_s=hey.total_s,
            slowest_s=hey.slowest_s,
            fastest_s=hey.fastest_s,
            average_s=hey.average_s,
            rps=hey.rps,
            rps_hey=float(lt.rps),
            **{f"{k}_s": v for k, v in pct.items()},
            cpu_s_per_req=float(lt.cpu_s_per_req),
            peak_rss_mb=float(lt.peak_rss_mb),
        )
        rows.append(row)
    extra = set(groups) - {tuple(r[k] for k in KEY) for r in rows}
    if extra:
        run.note(f"{len(extra)} hey run(s) in requests.csv.gz have no loadtests.csv row; ignored")
    out = pd.DataFrame(rows)
    run._cache["per_run"] = out
    return out


def per_config(run: Run | str | Path, write: bool = False) -> pd.DataFrame:
    """service x payload x concurrency: medians across repeats with spreads.

    Columns: the hey-table medians (``total_s`` ... ``average_s``), ``rps`` (median),
    ``rps_min``/``rps_max``/``rps_ci_low``/``rps_ci_high`` (95 % bootstrap interval of the
    median), ``spread_pct`` and ``unstable`` (of rps), ``p50_s``...``p999_s`` (medians),
    ``p99_min_s``/``p99_max_s``/``p99_spread_pct``, ``errors`` (sum over repeats), ``n``
    (requests of one repeat), ``cpu_s_per_req`` (median), ``peak_rss_mb`` (max).
    """
    run = load_run(run)
    if "per_config" not in run._cache:
        runs = per_run(run)
        rows = []
        for key, g in runs.groupby(CONFIG, sort=False):
            rps = stats.aggregate_repeats(g["rps"], threshold_pct=run.unstable_pct)
            p99 = stats.aggregate_repeats(g["p99_s"], threshold_pct=run.unstable_pct)
            row: dict[str, Any] = dict(zip(CONFIG, key, strict=True))
            row["label"] = run.label(key[0])
            row.update(
                repeats=int(g["repeat"].nunique()),
                n=int(g["n"].median()),
                errors=int(g["errors"].sum()),
                **{
                    c: float(g[c].median())
                    for c in ("total_s", "slowest_s", "fastest_s", "average_s")
                },
                rps=rps.median,
                rps_min=rps.min,
                rps_max=rps.max,
                rps_ci_low=rps.ci_low,
                rps_ci_high=rps.ci_high,
                spread_pct=rps.spread_pct,
                unstable=rps.unstable,
                **{f"{k}_s": float(g[f"{k}_s"].median()) for k in stats.PERCENTILES},
                p99_min_s=p99.min,
                p99_max_s=p99.max,
                p99_spread_pct=p99.spread_pct,
                cpu_s_per_req=float(g["cpu_s_per_req"].median()),
                peak_rss_mb=float(g["peak_rss_mb"].max()),
            )
            rows.append(row)
        df = pd.DataFrame(rows)
        order = {
            "service": {s: i for i, s in enumerate(run.services_in_order())},
            "payload": {p: i for i, p in enumerate(run.payloads_in_order())},
        }
        df = df.sort_values(
            ["service", "payload", "concurrency"],
            key=lambda c: c.map(order[c.name]) if c.name in order else c,
        )
        run._cache["per_config"] = df.reset_index(drop=True)
    df = run._cache["per_config"]
    if write:
        df.to_csv(run.path / "per_config.csv", index=False)
    return df


def ceilings(run: Run | str | Path) -> pd.DataFrame:
    """impl x payload: in-process medians (us) and ``ceiling_rps`` for the server's cores.

    Empty frame (with a note) when ceiling.csv is missing.
    """
    run = load_run(run)
    cols = [
        "impl",
        "payload",
        "iterations",
        "tokenization_us",
        "inference_us",
        "total_us",
        "server_cores",
        "ceiling_rps",
    ]
    if run.ceiling is None:
        return pd.DataFrame(columns=cols)
    g = run.ceiling.groupby(["impl", "payload"], sort=True)
    df = g[["tokenization_us", "inference_us", "total_us"]].median().reset_index()
    df["iterations"] = g.size().to_numpy()
    df["server_cores"] = run.server_cores
    df["ceiling_rps"] = [stats.ceiling_rps(t, run.server_cores) for t in df["total_us"]]
    return df[cols]


def _ceiling_for(run: Run, service: str) -> tuple[float, float]:
    """(ceiling_rps, in-process median total_us) for a service at the seed payload."""
    ce = ceilings(run)
    if ce.empty:
        return math.nan, math.nan
    language = None
    if run.services is not None and "language" in run.services:
        hit = run.services.loc[run.services["service"] == service, "language"]
        language = str(hit.iloc[0]) if len(hit) else None
    impl = stats.ceiling_impl_for(service, language)
    hit = ce[(ce["impl"] == impl) & (ce["payload"] == run.seed_payload)]
    if hit.empty:
        run.note(f"ceiling.csv has no {impl!r} rows for payload {run.seed_payload!r}")
        return math.nan, math.nan
    return float(hit["ceiling_rps"].iloc[0]), float(hit["total_us"].iloc[0])


def _latency_c1(run: Run, service: str) -> float:
    """Median latency (s) at concurrency 1, seed payload: from hey runs, else stages.csv."""
    pc = per_config(run)
    hit = pc[
        (pc["service"] == service) & (pc["payload"] == run.seed_payload) & (pc["concurrency"] == 1)
    ]
    if not hit.empty:
        return float(hit["p50_s"].iloc[0])
    if run.stages is not None:
        st = run.stages[
            (run.stages["service"] == service) & (run.stages["payload"] == run.seed_payload)
        ]
        if not st.empty:
            run.note("no hey run at concurrency 1: overhead_ms uses stages.csv client_us")
            return float(st["client_us"].median()) / 1e6
    run.note(f"no concurrency-1 latency for {service}: overhead_ms is NaN")
    return math.nan


def _openloop_payload(run: Run) -> str | None:
    if run.openloop is None or run.openloop.empty:
        return None
    payloads = list(dict.fromkeys(run.openloop["payload"]))
    if run.seed_payload in payloads:
        return run.seed_payload
    run.note(f"openloop.csv has no {run.seed_payload!r} payload; using {payloads[0]!r}")
    return payloads[0]


def build_summary(run_dir: str | Path | Run, write: bool = True) -> pd.DataFrame:
    """One row per service at the seed payload and seed concurrency (columns: DATA.md).

    * ``n``: requests of one repeat; ``errors``: non-2xx + lost requests, summed over repeats.
    * ``total_s``, ``slowest_s``, ``fastest_s``, ``average_s``, ``rps``, ``p50_s``...
      ``p999_s``: median across repeats of each repeat's value; ``rps_min``/``rps_max``:
      extremes of the repeats.
    * ``difference_pct``: Requests/sec vs the ``python`` baseline, ``(rps - rps_python) /
      rps_python * 100`` (seed convention; the full per-metric view is :func:`seed_table`).
    * ``spread_pct``/``unstable``: of rps across repeats (threshold ``run.unstable_pct``).
    * ``ceiling_rps``: :func:`servebench.stats.ceiling_rps` of the in-process loop that
      matches the service (:func:`servebench.stats.ceiling_impl_for`: ``rust`` for
      rust-native-*, ``python`` for python and rust-ffi-*) at the seed payload, times the
      number of server CPUs; ``efficiency`` = rps / ceiling_rps.
    * ``overhead_ms``: median latency at concurrency 1 (seed payload) minus the in-process
      median total of the same ceiling implementation.
    * ``cpu_s_per_req``: median of repeats; ``peak_rss_mb``: max of repeats;
      ``cold_start_s``, ``size_mb``: services.csv.
    * ``max_rate_under_bound``: highest openloop.csv rate with ``meets_bound`` (seed payload).

    Writes ``summary.csv`` and ``per_config.csv`` into the run directory when ``write``.
    """
    run = load_run(run_dir)
    pc = per_config(run, write=write)
    seed = pc[(pc["payload"] == run.seed_payload) & (pc["concurrency"] == run.seed_concurrency)]
    base = seed.loc[seed["service"] == run.baseline, "rps"]
    base_rps = float(base.iloc[0]) if len(base) else math.nan
    ol_payload = _openloop_payload(run)
    rows = []
    for r in seed.itertuples(index=False):
        ceiling, inproc_us = _ceiling_for(run, r.service)
        svc = {}
        if run.services is not None:
            hit = run.services[run.services["service"] == r.service]
            svc = hit.iloc[0].to_dict() if len(hit) else {}
        ol = math.nan
        if ol_payload is not None:
            ol = stats.max_rate_under_bound(
                run.openloop[
                    (run.openloop["service"] == r.service) & (run.openloop["payload"] == ol_payload)
                ]
            )
        rows.append(
            {
                "service": r.service,
                "label": r.label,
                "n": r.n,
                "errors": r.errors,
                "total_s": r.total_s,
                "slowest_s": r.slowest_s,
                "fastest_s": r.fastest_s,
                "average_s": r.average_s,
                "rps": r.rps,
                "rps_min": r.rps_min,
                "rps_max": r.rps_max,
                "p50_s": r.p50_s,
                "p90_s": r.p90_s,
                "p99_s": r.p99_s,
                "p999_s": r.p999_s,
                "difference_pct": stats.difference_pct(r.rps, base_rps),
                "repeats": r.repeats,
                "spread_pct": r.spread_pct,
                "unstable": r.unstable,
                "ceiling_rps": ceiling,
                "efficiency": stats.efficiency(r.rps, ceiling),
                "overhead_ms": stats.overhead_ms(_latency_c1(run, r.service), inproc_us),
                "cpu_s_per_req": r.cpu_s_per_req,
                "peak_rss_mb": r.peak_rss_mb,
                "cold_start_s": float(svc.get("cold_start_s", math.nan)),
                "size_mb": float(svc.get("size_mb", math.nan)),
                "max_rate_under_bound": ol,
            }
        )
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    if write:
        summary.to_csv(run.path / "summary.csv", index=False)
    return summary


def _best_rust(summary: pd.DataFrame, baseline: str = BASELINE) -> str | None:
    rust = summary[summary["service"] != baseline]
    if rust.empty:
        return None
    return str(rust.loc[rust["rps"].idxmax(), "service"])


def seed_table(summary: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """The seed's table from our summary: rows Total, Slowest, Fastest, Average, Requests/sec.

    One column per service (its label, seconds or requests/s, medians across repeats) and a
    ``Difference % (<best> vs <baseline>)`` column for the service with the highest rps, as
    the seed compared its best Rust build with Python. Per-service differences:
    :func:`difference_table`.
    """
    table = pd.DataFrame({row: summary.set_index("label")[col] for row, col in SEED_ROWS.items()}).T
    table.columns.name = None
    best = _best_rust(summary, baseline)
    base = summary[summary["service"] == baseline]
    if best is not None and not base.empty:
        b = summary[summary["service"] == best].iloc[0]
        col = f"Difference % ({b['label']} vs {base.iloc[0]['label']})"
        table[col] = [stats.difference_pct(b[c], base.iloc[0][c]) for c in SEED_ROWS.values()]
    return table


def difference_table(summary: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Difference % of every service against the baseline, per seed-table row."""
    base = summary[summary["service"] == baseline]
    if base.empty:
        return pd.DataFrame()
    b = base.iloc[0]
    out = {}
    for s in summary.itertuples(index=False):
        if s.service == baseline:
            continue
        out[s.label] = {
            row: stats.difference_pct(getattr(s, c), b[c]) for row, c in SEED_ROWS.items()
        }
    return pd.DataFrame(out)


def seed_comparison(summary: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """The seed's published ratios beside ours (absolute numbers are not comparable).

    Rows are the seed-table metrics. Columns: the seed's published values, its ratios
    (Rust Debug ÷ Python, Rust Release ÷ Python, recomputed from its table), the
    Difference % the seed printed, then our ratio (service ÷ python) for every service.
    A ratio below 1 means faster for Total/Slowest/Fastest/Average; above 1 means more
    Requests/sec. The seed's Rust called Python through PyO3 (our rust-ffi-*).
    """
    pub = SEED_PUBLISHED["rows"]
    out = pd.DataFrame(index=list(SEED_ROWS))
    for name in SEED_PUBLISHED["columns"]:
        out[f"seed {name}"] = [pub[r][name] for r in SEED_ROWS]
    for name in ("Rust Debug", "Rust Release"):
        out[f"seed ratio {name} ÷ Python"] = [
            stats.ratio(pub[r][name], pub[r]["Python"]) for r in SEED_ROWS
        ]
    out["seed printed Difference %"] = [pub[r]["Difference"] for r in SEED_ROWS]
    base = summary[summary["service"] == baseline]
    if not base.empty:
        b = base.iloc[0]
        for s in summary.itertuples(index=False):
            if s.service == baseline:
                continue
            out[f"ours {s.label} ÷ {b['label']}"] = [
                stats.ratio(getattr(s, c), b[c]) for c in SEED_ROWS.values()
            ]
    return out


def unstable_configs(run: Run | str | Path) -> pd.DataFrame:
    """Configurations whose Requests/sec repeats spread more than the threshold."""
    pc = per_config(load_run(run))
    cols = [
        "service",
        "payload",
        "concurrency",
        "repeats",
        "rps",
        "rps_min",
        "rps_max",
        "spread_pct",
        "p99_spread_pct",
    ]
    return pc.loc[pc["unstable"].astype(bool), cols].reset_index(drop=True)


def metadata_tables(run: Run | str | Path) -> dict[str, pd.DataFrame]:
    """metadata.json as small two-column tables: run, machine, pinning, versions, git,
    model, parameters."""
    run = load_run(run)
    md = run.metadata
    out: dict[str, pd.DataFrame] = {}

    def table(d: dict[str, Any]) -> pd.DataFrame:
        return pd.DataFrame(
            {"value": [json.dumps(v) if isinstance(v, dict | list) else v for v in d.values()]},
            index=list(d.keys()),
        ).astype(str)

    out["run"] = table({k: md.get(k) for k in ("run_id", "status", "started", "finished")})
    for key in ("machine", "pinning", "versions", "git", "model", "parameters"):
        if isinstance(md.get(key), dict):
            out[key] = table(md[key])
    return out


# --------------------------------------------------------------------------- figures


FIGURES = (
    "histograms",
    "latency_cdf",
    "rps_bars",
    "throughput_latency",
    "decomposition",
    "openloop",
    "resources",
    "payloads",
)


def _out_dirs(out_dir: str | Path | Sequence[str | Path]) -> list[Path]:
    dirs = [Path(out_dir)] if isinstance(out_dir, str | Path) else [Path(d) for d in out_dir]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    return dirs


def _save(fig: Figure, out_dir: str | Path | Sequence[str | Path], name: str) -> Path:
    paths = [d / f"{name}.png" for d in _out_dirs(out_dir)]
    for p in paths:
        fig.savefig(p, dpi=120, bbox_inches="tight")
    return paths[0]


def _figure(
    run: Run,
    title: str,
    ncols: int = 1,
    nrows: int = 1,
    size: tuple[float, float] = (9, 5),
    **kw: Any,
) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    fig.suptitle(f"{title}\n{run.context}", fontsize=11)
    return fig, axes


def _ms(x: float, _pos: Any = None) -> str:
    ms = x * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}".rstrip("0").rstrip(".")
    return f"{ms:.2g}"


def _minor_ms(x: float, pos: Any = None) -> str:
    """Label only the 2x and 5x minor ticks of a log axis (the others stay blank)."""
    if x <= 0:
        return ""
    mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
    return _ms(x) if round(mantissa) in (2, 5) and abs(mantissa - round(mantissa)) < 1e-6 else ""


def _log_ms(axis: Any) -> None:
    """A log-scaled latency axis labelled in milliseconds."""
    axis.set_major_formatter(FuncFormatter(_ms))
    axis.set_minor_formatter(FuncFormatter(_minor_ms))
    axis.set_tick_params(which="minor", labelsize=7)


def _seed_requests(run: Run) -> pd.DataFrame:
    r = run.requests
    return r[(r["payload"] == run.seed_payload) & (r["concurrency"] == run.seed_concurrency)]


def _representative_repeat(run: Run, service: str) -> int:
    """The repeat whose rps is the median one (lower middle for an even count)."""
    pr = per_run(run)
    g = pr[
        (pr["service"] == service)
        & (pr["payload"] == run.seed_payload)
        & (pr["concurrency"] == run.seed_concurrency)
    ].sort_values("rps")
    return int(g["repeat"].iloc[(len(g) - 1) // 2])


def fig_histograms(run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]) -> Path:
    """hey's response-time histogram, one panel per service, seed payload and concurrency.

    Each panel is the representative repeat (median rps) drawn like hey's text: 11 marks
    from fastest to slowest, a bar per mark counting the answers up to that mark.
    """
    run = load_run(run)
    services = run.services_in_order()
    colors = run.colors()
    ncols = min(3, len(services))
    nrows = math.ceil(len(services) / ncols)
    fig, axes = _figure(
        run,
        f"Response-time histograms, hey style (payload {run.seed_payload!r}, "
        f"c={run.seed_concurrency}, median-rps repeat)",
        ncols=ncols,
        nrows=nrows,
        size=(4.2 * ncols, 3.4 * nrows),
    )
    req = _seed_requests(run)
    for ax, service in zip(axes.flat, services, strict=False):
        rep = _representative_repeat(run, service)
        lat = req.loc[(req["service"] == service) & (req["repeat"] == rep), "response_time_s"]
        hist = stats.hey_histogram(lat)
        y = np.arange(len(hist))
        ax.barh(y, hist["count"], color=colors[service], edgecolor="black", linewidth=0.4)
        ax.set_yticks(y, [f"{m * 1e3:.1f}" for m in hist["mark_s"]], fontsize=8)
        ax.invert_yaxis()
        top = max(int(hist["count"].max()), 1) if len(hist) else 1
        for yi, c in zip(y, hist["count"], strict=True):
            ax.text(c + top * 0.02, yi, f"[{c}]", va="center", fontsize=7)
        ax.set_xlim(0, top * 1.2)
        ax.set_title(f"{run.label(service)} (repeat {rep}, n={len(lat)})", fontsize=9)
        ax.set_xlabel("answers", fontsize=8)
        ax.set_ylabel("bucket upper mark (ms)", fontsize=8)
    for ax in list(axes.flat)[len(services) :]:
        ax.set_visible(False)
    return _save(fig, out_dir, "histograms")


def fig_latency_cdf(run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]) -> Path:
    """Latency distribution at the seed configuration, all repeats pooled.

    Left: CDF on a log latency axis. Right: latency by percentile on a tail-stretching axis
    (0, 90, 99, 99.9 % equally spaced), so p99/p99.9 are readable.
    """
    run = load_run(run)
    colors = run.colors()
    fig, axes = _figure(
        run,
        f"Latency distribution (payload {run.seed_payload!r}, "
        f"c={run.seed_concurrency}, repeats pooled)",
        ncols=2,
        size=(12, 5),
    )
    ax_cdf, ax_pct = axes[0]
    req = _seed_requests(run)
    for service in run.services_in_order():
        lat = np.sort(req.loc[req["service"] == service, "response_time_s"].to_numpy(float))
        if lat.size == 0:
            continue
        frac = np.arange(1, lat.size + 1) / lat.size
        ax_cdf.step(lat, frac, where="post", color=colors[service], label=run.label(service))
        tail = -np.log10(np.clip(1 - (np.arange(lat.size) + 0.5) / lat.size, 1e-6, 1))
        ax_pct.plot(tail, lat, color=colors[service], label=run.label(service))
        for q in stats.PERCENTILES.values():
            ax_pct.plot(
                -math.log10(1 - q / 100), stats.percentile(lat, q), "o", ms=3, color=colors[service]
            )
    ax_cdf.set_xscale("log")
    _log_ms(ax_cdf.xaxis)
    ax_cdf.set_xlabel("latency (ms, log scale)")
    ax_cdf.set_ylabel("fraction of requests ≤ latency")
    ax_cdf.grid(True, which="both", alpha=0.3)
    ax_cdf.legend(fontsize=8)
    ax_pct.set_yscale("log")
    _log_ms(ax_pct.yaxis)
    ax_pct.set_xticks([0, math.log10(2), 1, 2, 3], ["p0", "p50", "p90", "p99", "p99.9"])
    ax_pct.set_xlim(0, 3.3)
    ax_pct.set_xlabel("percentile (tail stretched; dots = p50, p90, p99, p99.9)")
    ax_pct.set_ylabel("latency (ms, log scale)")
    ax_pct.grid(True, which="both", alpha=0.3)
    return _save(fig, out_dir, "latency_cdf")


def fig_rps_bars(run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]) -> Path:
    """Requests/sec per service (median of repeats, min-max whiskers) with the ceilings.

    Black ticks over each bar: that service's ceiling; dashed lines: the python and rust
    in-process ceilings (1e6 / median total_us x server CPUs).
    """
    run = load_run(run)
    summary = build_summary(run, write=False)
    colors = run.colors()
    fig, axes = _figure(
        run,
        f"Requests/sec, payload {run.seed_payload!r}, "
        f"c={run.seed_concurrency} (bar: median; whiskers: min–max of "
        f"{int(summary['repeats'].max())} repeats)",
        size=(10, 5.5),
    )
    ax = axes[0, 0]
    x = np.arange(len(summary))
    rps = summary["rps"].to_numpy(float)
    err = np.vstack([rps - summary["rps_min"], summary["rps_max"] - rps])
    ax.bar(
        x,
        rps,
        yerr=err,
        capsize=5,
        color=[colors[s] for s in summary["service"]],
        edgecolor="black",
        linewidth=0.5,
    )
    for xi, r in zip(x, summary.itertuples(index=False), strict=True):
        text = f"{r.rps:.1f}"
        if not pd.isna(r.efficiency):
            text += f"\n{r.efficiency:.0%} of ceiling"
        if r.unstable:
            text += "\nUNSTABLE"
        ax.text(xi, r.rps_max * 1.01, text, ha="center", va="bottom", fontsize=8)
        if not pd.isna(r.ceiling_rps):
            ax.hlines(r.ceiling_rps, xi - 0.4, xi + 0.4, colors="black", linewidth=2)
    ce = ceilings(run)
    ce = ce[ce["payload"] == run.seed_payload]
    styles = {"python": "--", "rust": ":"}
    for c in ce.itertuples(index=False):
        ax.axhline(
            c.ceiling_rps,
            linestyle=styles.get(c.impl, "-."),
            color="grey",
            label=f"{c.impl} in-process ceiling: {c.ceiling_rps:.0f} rps "
            f"({c.total_us / 1e3:.1f} ms × {c.server_cores} CPU)",
        )
    if ce.empty:
        run.note("ceiling.csv missing: requests/sec bars drawn without the ceiling")
    ax.set_xticks(x, summary["label"], rotation=15)
    ax.set_ylabel("requests/sec (hey, closed loop)")
    top = np.nanmax([np.nanmax(summary["rps_max"]), *(ce["ceiling_rps"].tolist() or [0])])
    ax.set_ylim(0, top * 1.25)
    if not ce.empty:
        ax.legend(fontsize=8, loc="upper left")
    return _save(fig, out_dir, "rps_bars")


def fig_throughput_latency(
    run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]
) -> Path:
    """Throughput against latency over the concurrency sweep (seed payload), p50 and p99.

    One line per service; each point a concurrency level (median of repeats), labelled c=.
    """
    run = load_run(run)
    pc = per_config(run)
    pc = pc[pc["payload"] == run.seed_payload]
    colors = run.colors()
    fig, axes = _figure(
        run,
        f"Throughput vs latency over concurrency (payload "
        f"{run.seed_payload!r}, medians of repeats)",
        ncols=2,
        size=(12, 5),
        sharey=True,
    )
    for ax, col, name in ((axes[0, 0], "p50_s", "p50"), (axes[0, 1], "p99_s", "p99")):
        for service in run.services_in_order():
            g = pc[pc["service"] == service].sort_values("concurrency")
            if g.empty:
                continue
            ax.plot(g["rps"], g[col], "o-", color=colors[service], label=run.label(service))
            for r in g.itertuples(index=False):
                ax.annotate(
                    f"c={r.concurrency}",
                    (r.rps, getattr(r, col)),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_yscale("log")
        _log_ms(ax.yaxis)
        ax.set_xlabel("requests/sec")
        ax.set_ylabel(f"{name} latency (ms, log scale)")
        ax.set_title(name)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return _save(fig, out_dir, "throughput_latency")


STAGE_STYLE = {
    "network_http_us": ("network/HTTP (client − handler)", "#d9d9d9"),
    "handler_overhead_us": ("handler overhead (handler − tok − inf)", "#fdd49e"),
    "tokenization_us": ("tokenization", "#74c476"),
    "inference_us": ("inference (ORT run)", "#3182bd"),
}


def fig_decomposition(
    run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]
) -> Path | None:
    """Where one request's time goes at concurrency 1: stacked medians from stages.csv.

    One panel per payload; bars per service split into network/HTTP, handler overhead,
    tokenization and inference (see :func:`servebench.stats.decompose_stages`).
    """
    run = load_run(run)
    if run.stages is None or run.stages.empty:
        run.note("stages.csv missing: latency decomposition figure skipped")
        return None
    dec = stats.decompose_stages(run.stages)
    payloads = [p for p in run.payloads_in_order() if p in set(dec["payload"])]
    payloads += sorted(set(dec["payload"]) - set(payloads))
    services = [s for s in run.services_in_order() if s in set(dec["service"])]
    services += sorted(set(dec["service"]) - set(services))
    ncols = min(2, len(payloads))
    nrows = math.ceil(len(payloads) / ncols)
    fig, axes = _figure(
        run,
        "Latency decomposition at concurrency 1 (medians of stages.csv)",
        ncols=ncols,
        nrows=nrows,
        size=(6.5 * ncols, 0.6 * len(services) * nrows + 1.8 * nrows),
    )
    for ax, payload in zip(axes.flat, payloads, strict=False):
        d = dec[dec["payload"] == payload].set_index("service").reindex(services)
        y = np.arange(len(services))
        left = np.zeros(len(services))
        for comp, (name, color) in STAGE_STYLE.items():
            v = np.clip(d[comp].to_numpy(float), 0, None) / 1e3
            v = np.nan_to_num(v)
            ax.barh(y, v, left=left, color=color, edgecolor="black", linewidth=0.4, label=name)
            left += v
        for yi, tot in zip(y, d["client_us"].to_numpy(float) / 1e3, strict=True):
            if not np.isnan(tot):
                ax.text(left[yi] * 1.01, yi, f"{tot:.1f} ms", va="center", fontsize=7)
        ax.set_yticks(y, [run.label(s) for s in services], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, np.nanmax(left) * 1.18 if np.nanmax(left) > 0 else 1)
        ax.set_xlabel("ms (median)")
        ax.set_title(f"payload {payload!r}", fontsize=9)
    for ax in list(axes.flat)[len(payloads) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    return _save(fig, out_dir, "decomposition")


def latency_bound_s(run: Run) -> float:
    """The open-loop p99 bound from metadata parameters (a key containing 'bound' ending in
    ``_ms`` or ``_s``), NaN when none is recorded."""
    params = run.metadata.get("parameters") or {}
    for k, v in params.items():
        if "bound" in k.lower() and isinstance(v, int | float) and not isinstance(v, bool):
            if k.endswith("_ms"):
                return float(v) / 1e3
            if k.endswith("_s"):
                return float(v)
    return math.nan


def fig_openloop(run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]) -> Path | None:
    """Open-loop (vegeta) p99 against offered rate, with the latency bound.

    Filled markers: the attack met the bound; hollow: it did not. Right panel: achieved
    throughput against offered rate (the diagonal is 'keeps up').
    """
    run = load_run(run)
    payload = _openloop_payload(run)
    if payload is None:
        run.note("openloop.csv missing: open-loop figure skipped")
        return None
    ol = run.openloop[run.openloop["payload"] == payload]
    colors = run.colors()
    fig, axes = _figure(
        run, f"Open-loop (fixed arrival rate) latency, payload {payload!r}", ncols=2, size=(12, 5)
    )
    ax, ax_t = axes[0]
    services = [s for s in run.services_in_order() if s in set(ol["service"])]
    services += sorted(set(ol["service"]) - set(services))
    colors.update({s: c for s, c in service_colors(services).items() if s not in colors})
    for s in services:
        g = ol[ol["service"] == s].sort_values("rate")
        ok = stats.as_bool(g["meets_bound"]).to_numpy()
        ax.plot(g["rate"], g["p99_s"], "-", color=colors[s], label=run.label(s))
        ax.plot(g["rate"][ok], g["p99_s"][ok], "o", color=colors[s])
        ax.plot(g["rate"][~ok], g["p99_s"][~ok], "o", mfc="none", color=colors[s])
        ax_t.plot(g["rate"], g["throughput"], "o-", color=colors[s], label=run.label(s))
    bound = latency_bound_s(run)
    if not math.isnan(bound):
        ax.axhline(bound, color="red", linestyle="--", label=f"p99 bound {bound * 1e3:g} ms")
    else:
        run.note("no latency bound in metadata parameters: open-loop bound line not drawn")
    ax.set_yscale("log")
    _log_ms(ax.yaxis)
    ax.set_xlabel("offered rate (requests/s)")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title("p99 vs offered rate (filled: meets bound)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    lim = float(ol["rate"].max()) * 1.05
    ax_t.plot([0, lim], [0, lim], color="grey", linestyle=":", label="offered = achieved")
    ax_t.set_xlabel("offered rate (requests/s)")
    ax_t.set_ylabel("achieved throughput (answers/s)")
    ax_t.set_title("throughput vs offered rate", fontsize=9)
    ax_t.grid(True, alpha=0.3)
    return _save(fig, out_dir, "openloop")


def fig_resources(run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]) -> Path:
    """Resource cost per service: CPU ms per request, peak RSS, cold start, size on disk."""
    run = load_run(run)
    summary = build_summary(run, write=False)
    colors = [run.colors()[s] for s in summary["service"]]
    panels = [
        ("cpu_s_per_req", 1e3, "server CPU per request (ms)"),
        ("peak_rss_mb", 1, "peak RSS (MB)"),
        ("cold_start_s", 1, "cold start: spawn → first answer (s)"),
        ("size_mb", 1, "size on disk (MB)"),
    ]
    fig, axes = _figure(
        run,
        f"Resources (payload {run.seed_payload!r}, c={run.seed_concurrency})",
        ncols=2,
        nrows=2,
        size=(11, 7),
    )
    y = np.arange(len(summary))
    for ax, (col, scale, name) in zip(axes.flat, panels, strict=True):
        v = summary[col].to_numpy(float) * scale
        if np.all(np.isnan(v)):
            ax.text(
                0.5,
                0.5,
                "not measured (services.csv missing)",
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
        ax.barh(y, np.nan_to_num(v), color=colors, edgecolor="black", linewidth=0.4)
        for yi, vi in zip(y, v, strict=True):
            if not np.isnan(vi):
                ax.text(vi, yi, f" {vi:.3g}", va="center", fontsize=8)
        ax.set_yticks(y, summary["label"], fontsize=8)
        ax.invert_yaxis()
        ax.set_title(name, fontsize=9)
        finite = v[~np.isnan(v)]
        ax.set_xlim(0, finite.max() * 1.2 if finite.size and finite.max() > 0 else 1)
    return _save(fig, out_dir, "resources")


def _bars_with_range(
    ax: Any,
    pos: np.ndarray,
    frame: pd.DataFrame,
    column: str,
    width: float,
    color: str,
    label: str | None = None,
) -> None:
    """Bars at the median with min–max whiskers (columns <c>, <c>_min/<c>_max or <x>_min_s)."""
    stem = column.removesuffix("_s")
    suffix = "_s" if column.endswith("_s") else ""
    low, high = frame[f"{stem}_min{suffix}"], frame[f"{stem}_max{suffix}"]
    err = np.vstack([frame[column] - low, high - frame[column]])
    ax.bar(
        pos,
        frame[column],
        width,
        yerr=np.nan_to_num(err),
        capsize=2,
        color=color,
        edgecolor="black",
        linewidth=0.4,
        label=label,
    )


def fig_payloads(run: Run | str | Path, out_dir: str | Path | Sequence[str | Path]) -> Path:
    """Requests/sec and p99 per payload at the seed concurrency (medians, min–max whiskers)."""
    run = load_run(run)
    pc = per_config(run)
    pc = pc[pc["concurrency"] == run.seed_concurrency]
    payloads = [p for p in run.payloads_in_order() if p in set(pc["payload"])]
    services = [s for s in run.services_in_order() if s in set(pc["service"])]
    colors = run.colors()
    fig, axes = _figure(run, f"Per payload at c={run.seed_concurrency}", ncols=2, size=(13, 5))
    width = 0.8 / max(1, len(services))
    x = np.arange(len(payloads))
    for i, s in enumerate(services):
        g = pc[pc["service"] == s].set_index("payload").reindex(payloads)
        pos = x - 0.4 + width * (i + 0.5)
        _bars_with_range(axes[0, 0], pos, g, "rps", width, colors[s], run.label(s))
        _bars_with_range(axes[0, 1], pos, g, "p99_s", width, colors[s])
    for ax, name in ((axes[0, 0], "requests/sec"), (axes[0, 1], "p99 latency (ms)")):
        ax.set_xticks(x, payloads)
        ax.set_xlabel("payload")
        ax.set_ylabel(name)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0, 1].yaxis.set_major_formatter(FuncFormatter(_ms))
    axes[0, 0].legend(fontsize=8)
    return _save(fig, out_dir, "payloads")


# In the order a reader meets them (the README shows them in this order).
FIGURE_FUNCTIONS = {
    "rps_bars": fig_rps_bars,
    "histograms": fig_histograms,
    "latency_cdf": fig_latency_cdf,
    "throughput_latency": fig_throughput_latency,
    "decomposition": fig_decomposition,
    "payloads": fig_payloads,
    "openloop": fig_openloop,
    "resources": fig_resources,
}


def make_figures(
    run: Run | str | Path, out_dirs: str | Path | Sequence[str | Path]
) -> dict[str, Path | None]:
    """Every figure into every directory of ``out_dirs``; ``None`` for skipped ones
    (the reason is in ``run.notes``)."""
    run = load_run(run)
    return {name: fn(run, out_dirs) for name, fn in FIGURE_FUNCTIONS.items()}
