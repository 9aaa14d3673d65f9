"""A batched service's run counts around a burst: how many ONNX Runtime runs its requests
took, how many rows and real tokens they held and how many positions they were padded to
(`GET /stats`, service/CONTRACT.md "Batched services"). hey drops the answers' headers, so
the counts are the only record of the batches formed at the seed point.

Read right before and right after a burst, outside the load generator's run and the
resource sampler: the warm-up and verification requests before it are not in the delta.
"""

from __future__ import annotations

from servebench.client import Client
from servebench.process import ServiceError, ServiceProcess

#: loadtests.csv column -> the /stats field it is the burst's delta of (docs/DATA.md).
COLUMNS = {
    "batch_runs": "runs",
    "batch_rows": "rows",
    "batch_tokens": "tokens",
    "batch_positions": "positions",
}

Counts = dict[str, int]


def read(proc: ServiceProcess) -> Counts | None:
    """The service's counts now; None for a service that does not batch (it has no /stats)."""
    if not proc.service.batching:
        return None
    with Client(proc.host, proc.port) as client:
        answer = client.request("GET", "/stats")
    body = answer.body
    fields = COLUMNS.values()
    if answer.status != 200 or not isinstance(body, dict) or not set(fields) <= set(body):
        raise ServiceError(f"{proc.service.name}: GET /stats answered {answer.status} {body!r}")
    return {name: int(body[name]) for name in fields}


def burst_columns(before: Counts | None, after: Counts | None) -> dict[str, int | None]:
    """loadtests.csv's counts of a burst: after - before; None (written empty, read as NaN)
    for a service that does not batch, so that every row has the same columns."""
    if before is None or after is None:
        return dict.fromkeys(COLUMNS)
    return {column: after[name] - before[name] for column, name in COLUMNS.items()}
