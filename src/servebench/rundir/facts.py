"""Each service's facts (label, colour, order, baseline, inference ...) for the report.

* :func:`service_facts` - from a run's ``services.csv`` first, else the service registry.
* :func:`read_facts` - the same for a directory that may hold a services.csv (a run, or
  published data such as ``data/reference/``).

Split from :mod:`servebench.rundir.reader`, which re-exports both.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from servebench import registry

#: What services.csv says about each service besides its measurements (registry.facts()).
FACT_COLUMNS: tuple[str, ...] = (
    "label", "language", "inference", "family", "build", "color", "order", "baseline",
    "batching", "twin", "control", "step_from", "rung",
)  # fmt: skip
#: Facts a services.csv written before batched services (A/A controls, the ladder) lacks:
#: their value for every service of such a run (none batched, none a control, no ladder),
#: taken without a note.
LATER_FACTS: dict[str, Any] = {
    "batching": False, "twin": "", "control": False, "step_from": "", "rung": False,
}  # fmt: skip
#: Facts that are true or false.
BOOL_FACTS = ("batching", "control", "rung")
#: Facts whose empty CSV cell (read back as NaN) means "none".
MAY_BE_EMPTY = ("baseline", "twin", "step_from")


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
    if table is not None:
        for column, value in LATER_FACTS.items():
            if column not in given.columns:
                given[column] = value
    lacking = [c for c in FACT_COLUMNS if c not in given.columns]
    known: dict[str, dict[str, Any]] | None = None
    rows: dict[str, dict[str, Any]] = {}
    filled, unknown = [], []
    for name in names:
        row = {c: given.at[name, c] for c in FACT_COLUMNS if c in given and name in given.index}
        row = {k: v for k, v in row.items() if not pd.isna(v)}
        # An empty CSV cell reads as NaN: in a described service's baseline it means "none".
        if set(FACT_COLUMNS) - set(row) <= set(MAY_BE_EMPTY):
            for column in (c for c in MAY_BE_EMPTY if c in given and c not in row):
                row[column] = ""
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
        defaults.update(build="-", color="", order=after + i, baseline=root, **LATER_FACTS)
        rows[name] = {**defaults, **rows[name]}
    if unknown:
        notes.append(
            f"service(s) {', '.join(sorted(unknown))} are in neither services.csv nor the "
            "registry: shown by name, without an in-process ceiling"
            + (f", compared with {root}" if root else ", compared with no baseline")
        )
    facts = pd.DataFrame.from_dict(rows, orient="index", columns=list(FACT_COLUMNS))
    facts["order"] = facts["order"].astype(int)
    for column in BOOL_FACTS:
        facts[column] = facts[column].map(truth)
    for column in (c for c in FACT_COLUMNS if c not in ("order", *BOOL_FACTS)):
        facts[column] = facts[column].fillna("").astype(str)
    facts.index.name = "service"
    return facts.sort_values("order", kind="stable")


def truth(value: Any) -> bool:
    """A bool fact as a CSV gives it back: True/False, or their text."""
    return str(value).strip().lower() == "true"


def read_facts(run_dir: str | Path, services: Iterable[str]) -> tuple[pd.DataFrame, list[str]]:
    """:func:`service_facts` for a directory holding a services.csv (or not): a run, or
    published data such as data/reference/ that has no raw files."""
    path = Path(run_dir) / "services.csv"
    return service_facts(services, pd.read_csv(path) if path.is_file() else None)
