"""What the summary takes from a run's optional files, per (service, variant).

* :func:`ceilings` - the in-process ceiling per inference kind (``impl``), variant and payload.
* :func:`ceiling_for` - the ceiling bounding one service serving one variant.
* :func:`latency_c1` - its median latency at concurrency 1 (for ``overhead_ms``).
* :func:`openloop_payload` - the payload of the open-loop attacks.
* :func:`cold_start` - its median cold start (coldstarts.csv), :func:`service_measure` -
  a services.csv measurement (size on disk).
* :func:`stage_decomposition` - the concurrency-1 round trip split into its four parts.

Every function takes a loaded :class:`~servebench.rundir.reader.Run`; a missing optional
file gives NaN (or an empty frame) and the reader's notes say why.
"""

from __future__ import annotations

import math

import pandas as pd

from servebench.analysis import stats
from servebench.rundir.reader import Run

#: ceiling.csv grouped: what one in-process loop is measured per.
CEILING_KEY = ["impl", "variant", "payload"]


def ceilings(run: Run) -> pd.DataFrame:
    """impl x variant x payload: in-process medians (us) and ``ceiling_rps`` for the
    server's cores. Empty frame when ceiling.csv is missing."""
    return run.cached("ceilings", lambda: _ceilings(run))


def _ceilings(run: Run) -> pd.DataFrame:
    cols = [*CEILING_KEY, "iterations", "tokenization_us", "inference_us", "total_us"]
    cols += ["server_cores", "ceiling_rps"]
    if run.ceiling is None:
        return pd.DataFrame(columns=cols)
    g = run.ceiling.groupby(CEILING_KEY, sort=False)
    df = g[["tokenization_us", "inference_us", "total_us"]].median().reset_index()
    df["iterations"] = g.size().to_numpy()
    df["server_cores"] = run.server_cores
    df["ceiling_rps"] = [stats.ceiling_rps(t, run.server_cores) for t in df["total_us"]]
    return run.in_display_order(df[cols], CEILING_KEY)


def ceiling_for(run: Run, service: str, variant: str) -> tuple[float, float]:
    """(ceiling_rps, in-process median total_us) bounding a service at the seed payload.

    The in-process loop is the one named by the service's ``inference`` fact (what runs
    tokenize + ONNX Runtime for it per request) on the same model variant.
    """
    ce = ceilings(run)
    impl = run.fact(service, "inference")
    if ce.empty or not impl:  # the reader's notes already say why
        return math.nan, math.nan
    key = (impl, variant, run.seed_payload)
    indexed = ce.set_index(CEILING_KEY)
    if key not in indexed.index:
        run.note(f"ceiling.csv has no {impl!r} rows of {variant} for payload {run.seed_payload!r}")
        return math.nan, math.nan
    return float(indexed.at[key, "ceiling_rps"]), float(indexed.at[key, "total_us"])


def latency_c1(run: Run, per_config: pd.DataFrame, service: str, variant: str) -> float:
    """Median latency (s) at concurrency 1, seed payload: from hey runs (``per_config``),
    else stages.csv."""
    pc = per_config
    hit = pc[
        (pc["service"] == service)
        & (pc["variant"] == variant)
        & (pc["payload"] == run.seed_payload)
        & (pc["concurrency"] == 1)
    ]
    if not hit.empty:
        return float(hit["p50_s"].iloc[0])
    st = run.stages
    if st is not None:
        st = st[
            (st["service"] == service)
            & (st["variant"] == variant)
            & (st["payload"] == run.seed_payload)
        ]
        if not st.empty:
            run.note("no hey run at concurrency 1: overhead_ms uses stages.csv client_us")
            return float(st["client_us"].median()) / 1e6
    run.note(f"no concurrency-1 latency for {run.unit_label(service, variant)}: overhead_ms is NaN")
    return math.nan


def openloop_payload(run: Run) -> str | None:
    """The payload the open-loop phase attacked with: the seed payload when present."""
    if run.openloop is None or run.openloop.empty:
        return None
    payloads = list(dict.fromkeys(run.openloop["payload"]))
    if run.seed_payload in payloads:
        return run.seed_payload
    run.note(f"openloop.csv has no {run.seed_payload!r} payload; using {payloads[0]!r}")
    return payloads[0]


def service_measure(run: Run, service: str, column: str) -> float:
    """A services.csv measurement (cold start, size), NaN when not measured."""
    if run.services is None or column not in run.services:
        return math.nan
    hit = run.services.loc[run.services["service"] == service, column]
    return float(hit.iloc[0]) if len(hit) else math.nan


def cold_start(run: Run, service: str, variant: str) -> float:
    """Median spawn-to-first-answer (s) of the unit over its starts (coldstarts.csv).

    Without coldstarts.csv: services.csv's ``cold_start_s``, which is one number per
    service (the median over all its variants' starts), with a note when variants differ.
    """
    cs = run.coldstarts
    if cs is None or "cold_start_s" not in cs:
        if run.multi_variant and run.services is not None:
            run.note("coldstarts.csv missing: every variant shows its service's cold_start_s")
        return service_measure(run, service, "cold_start_s")
    mine = cs.loc[(cs["service"] == service) & (cs["variant"] == variant), "cold_start_s"]
    return float(mine.median()) if len(mine) else math.nan


def stage_decomposition(run: Run, rungs: bool = False) -> pd.DataFrame:
    """stages.csv's concurrency-1 round trip split into four parts per (service, variant,
    payload) (:func:`servebench.analysis.stats.decompose_stages`); empty when missing. The
    ladder's rungs (services.csv ``rung``) only with `rungs`: the ladder shows them."""
    columns = ["service", "variant", "payload", "requests", "client_us", "handler_us"]
    if run.stages is None or run.stages.empty:
        return pd.DataFrame(columns=[*columns, *stats.STAGE_COMPONENTS])
    stages = run.stages
    if not rungs:
        shown = [s for s in run.facts.index if not run.fact(s, "rung")]
        stages = stages[stages["service"].isin(shown)]
    return stats.decompose_stages(stages, by=("service", "variant", "payload"))


def stages_shown(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """:func:`stage_decomposition` as the report prints it: headed in words, µs as ms to
    three decimals, no index."""
    view = pd.DataFrame(
        {
            "service": table["service"].map(run.label),
            "model": table["variant"],
            "payload": table["payload"],
            "requests": table["requests"],
        }
    )
    for column in [c for c in table.columns if c.endswith("_us")]:
        view[column.removesuffix("_us").replace("_", " ") + " ms"] = (table[column] / 1e3).round(3)
    return view.reset_index(drop=True)
