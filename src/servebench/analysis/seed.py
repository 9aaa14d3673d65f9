"""The seed study's view: its table computed from our summary, and its published numbers.

The seed printed five rows (Total, Slowest, Fastest, Average, Requests/sec) per service
and a Difference column, ``(value - baseline) / baseline * 100``, for its best Rust build
against Python. Here:

* :func:`seed_table` - that table from ``summary.csv``, the Difference keeping the seed's
  convention: the baseline service against the best service of the other language.
* :func:`difference_table` - Difference % of every service against its own baseline.
* :func:`seed_comparison` - the seed's published ratios (``data/reference/
  seed_published.csv``) beside ours; only ratios compare across machines.

``facts`` is a run's service facts (:attr:`servebench.rundir.reader.Run.facts` or
:func:`servebench.rundir.reader.read_facts`): index service, columns ``language`` and
``baseline`` at least.

Each function takes the rows of one model ``variant`` of the summary (default ``fp32``, the
seed's own model; ``int8`` gives the same view of the quantized model).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from servebench import paths
from servebench.analysis import stats
from servebench.rundir.reader import BASE_VARIANT

#: Seed-table row -> summary.csv column.
SEED_ROWS: dict[str, str] = {
    "Total": "total_s",
    "Slowest": "slowest_s",
    "Fastest": "fastest_s",
    "Average": "average_s",
    "Requests/sec": "table_rps",
}
PUBLISHED_FILE = paths.DATA / "reference" / "seed_published.csv"
#: The published table's column holding the Difference % the seed printed.
PRINTED_DIFFERENCE = "Difference"
#: The seed's model was not quantized: its view defaults to the fp32 rows.
SEED_VARIANT = BASE_VARIANT


def published(path: Path = PUBLISHED_FILE) -> pd.DataFrame:
    """The seed's published table: index the seed-table rows, one column per seed service
    (the first is its baseline), then the ``Difference`` it printed (%)."""
    return pd.read_csv(path, comment="#", index_col="metric")


def of_variant(summary: pd.DataFrame, variant: str = SEED_VARIANT) -> pd.DataFrame:
    """The summary's rows of one model variant."""
    return summary[summary["variant"].astype(str) == variant].reset_index(drop=True)


def _facts_of(summary: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Facts aligned with the summary's rows (services without facts: empty strings)."""
    return facts.reindex(summary["service"].astype(str)).fillna("")


def unbatched(summary: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """The summary's rows of services answering one request at a time, as the seed's did:
    the batched services are compared with their twins in the report's batching section."""
    if "batching" not in facts:
        return summary
    batched = facts["batching"].reindex(summary["service"].astype(str)).fillna(False)
    return summary[~batched.astype(bool).to_numpy()].reset_index(drop=True)


def seed_pair(
    summary: pd.DataFrame, facts: pd.DataFrame, variant: str = SEED_VARIANT
) -> tuple[str, str] | None:
    """(baseline, best): the pair the seed's Difference compares in one variant, or None.

    The baseline is the first service of the summary that has no baseline of its own (a
    root of the comparison); the best is the service with the highest Requests/sec among
    those whose language differs from the baseline's (unbatched services only).
    """
    summary = unbatched(of_variant(summary, variant), facts)
    aligned = _facts_of(summary, facts)
    roots = [s for s, b in zip(aligned.index, aligned["baseline"], strict=True) if b == ""]
    roots = [s for s in roots if s in set(facts.index)]
    if not roots:
        return None
    language = aligned.at[roots[0], "language"]
    others = summary[(aligned["language"] != language).to_numpy()]
    if others.empty:
        return None
    return roots[0], str(others.loc[others["rps"].idxmax(), "service"])


def seed_table(
    summary: pd.DataFrame, facts: pd.DataFrame, variant: str = SEED_VARIANT
) -> pd.DataFrame:
    """The seed's table from our summary: rows Total, Slowest, Fastest, Average, Requests/sec.

    One column per service serving ``variant`` (its label, seconds or requests/s, of the
    seed's full ``hey -n`` runs) and a ``Difference % (<best> vs <baseline>)`` column for the
    pair of :func:`seed_pair`, as the seed compared its best Rust build with Python. Per-service
    differences: :func:`difference_table`. Empty columns when the variant was not measured.
    Batched services are left out (the seed answered one request at a time).
    """
    summary = unbatched(of_variant(summary, variant), facts)
    table = pd.DataFrame({row: summary.set_index("label")[col] for row, col in SEED_ROWS.items()}).T
    table.columns.name = None
    pair = seed_pair(summary, facts, variant)
    if pair is not None:
        rows = summary.set_index("service")
        base, best = rows.loc[pair[0]], rows.loc[pair[1]]
        col = f"Difference % ({best['label']} vs {base['label']})"
        table[col] = [stats.difference_pct(best[c], base[c]) for c in SEED_ROWS.values()]
    return table


def _with_baseline(
    summary: pd.DataFrame, facts: pd.DataFrame, variant: str
) -> list[tuple[pd.Series, pd.Series]]:
    """(service row, its baseline's row) for every service whose baseline is in the summary,
    both serving ``variant``."""
    summary = of_variant(summary, variant)
    rows = summary.set_index("service", drop=False)
    aligned = _facts_of(summary, facts)
    return [
        (rows.loc[service], rows.loc[base])
        for service, base in zip(aligned.index, aligned["baseline"], strict=True)
        if base and base in rows.index
    ]


def difference_table(
    summary: pd.DataFrame, facts: pd.DataFrame, variant: str = SEED_VARIANT
) -> pd.DataFrame:
    """Difference % of every service against its own baseline (same variant), per
    seed-table row. One column per compared service (its label); a baseline itself has no
    column.
    """
    return pd.DataFrame(
        {
            s["label"]: {row: stats.difference_pct(s[c], b[c]) for row, c in SEED_ROWS.items()}
            for s, b in _with_baseline(summary, facts, variant)
        },
        index=list(SEED_ROWS),
    )


def seed_comparison(
    summary: pd.DataFrame,
    facts: pd.DataFrame,
    seed: pd.DataFrame | None = None,
    variant: str = SEED_VARIANT,
) -> pd.DataFrame:
    """The seed's published ratios beside ours (absolute numbers are not comparable).

    Rows are the seed-table metrics. Columns: the seed's published values, its ratios
    (each seed service ÷ the seed's baseline, recomputed from its table), the Difference %
    the seed printed, then our ratio (service ÷ its baseline) for every compared service.
    A ratio below 1 means faster for Total/Slowest/Fastest/Average; above 1 means more
    Requests/sec. ``seed`` defaults to :func:`published`.
    """
    seed = published() if seed is None else seed
    services = [c for c in seed.columns if c != PRINTED_DIFFERENCE]
    out = pd.DataFrame(index=list(SEED_ROWS))
    for name in services:
        out[f"seed {name}"] = seed.loc[list(SEED_ROWS), name]
    base = services[0]
    for name in services[1:]:
        out[f"seed ratio {name} ÷ {base}"] = [
            stats.ratio(seed.at[r, name], seed.at[r, base]) for r in SEED_ROWS
        ]
    out["seed printed Difference %"] = seed.loc[list(SEED_ROWS), PRINTED_DIFFERENCE]
    for s, b in _with_baseline(summary, facts, variant):
        out[f"ours {s['label']} ÷ {b['label']}"] = [
            stats.ratio(s[c], b[c]) for c in SEED_ROWS.values()
        ]
    return out
