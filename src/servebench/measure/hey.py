"""Run hey (the seed's load generator) and read its per-request CSV."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pandas as pd

from servebench.analysis.stats import hey_histogram, percentile
from servebench.loadgens import hey_path
from servebench.loadrun import ClosedLoopRun
from servebench.process import pinned, run_child

HEY_COLUMNS = {
    "response-time": "response_time_s",
    "DNS+dialup": "dns_dialup_s",
    "DNS": "dns_s",
    "Request-write": "request_write_s",
    "Response-delay": "response_delay_s",
    "Response-read": "response_read_s",
    "status-code": "status_code",
    "offset": "offset_s",
}


class HeyError(RuntimeError):
    pass


def parse_csv(text: str) -> pd.DataFrame:
    """hey -o csv output -> one row per answered request, with snake_case columns."""
    if not text.strip():
        return pd.DataFrame({column: pd.Series(dtype="float64") for column in HEY_COLUMNS.values()})
    frame = pd.read_csv(io.StringIO(text))
    missing = [column for column in HEY_COLUMNS if column not in frame.columns]
    if missing:
        raise HeyError(f"hey CSV lacks columns {missing}; got {list(frame.columns)}")
    frame = frame.rename(columns=HEY_COLUMNS)[list(HEY_COLUMNS.values())]
    frame["status_code"] = frame["status_code"].astype("int64")
    return frame


def hey_command(
    url: str,
    body_file: Path,
    *,
    requests: int | None,
    duration_s: float | None,
    concurrency: int,
    timeout_s: int = 60,
) -> list[str]:
    argv = [hey_path(), "-c", str(concurrency), "-m", "POST", "-T", "application/json"]
    argv += ["-D", str(body_file), "-t", str(timeout_s), "-o", "csv"]
    if duration_s is not None:
        argv += ["-z", f"{duration_s}s"]
    else:
        argv += ["-n", str(requests)]
    return [*argv, url]


def run_hey(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    requests: int | None = None,
    duration_s: float | None = None,
    cpus: str | None = None,
    timeout_s: int = 60,
) -> ClosedLoopRun:
    """One closed-loop hey run; `requests` (-n) or `duration_s` (-z)."""
    if (requests is None) == (duration_s is None):
        raise ValueError("give exactly one of requests or duration_s")
    if requests is not None and requests < concurrency:
        raise ValueError(f"hey needs requests ({requests}) >= concurrency ({concurrency})")
    with tempfile.NamedTemporaryFile(suffix=".json") as body_file:
        body_file.write(body)
        body_file.flush()
        argv = hey_command(
            url,
            Path(body_file.name),
            requests=requests,
            duration_s=duration_s,
            concurrency=concurrency,
            timeout_s=timeout_s,
        )
        child = run_child(pinned(argv, cpus), timeout_s=(duration_s or 0) + 600)
    result = child.result
    if result.returncode != 0:
        raise HeyError(f"hey failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    records = parse_csv(result.stdout)
    return ClosedLoopRun(
        records=records,
        requested=requests_sent(requests, concurrency, len(records)),
        concurrency=concurrency,
        wall_s=child.wall_s,
        loadgen_cpu_s=child.cpu_s,
    )


def requests_sent(requests: int | None, concurrency: int, answered: int) -> int:
    """How many requests hey sends: each of its c workers sends n // c (so -n 1000 -c 16
    sends 992); with -z every request sent is in the records."""
    if requests is None:
        return answered
    return (requests // concurrency) * concurrency


def render_summary(run: ClosedLoopRun) -> str:
    """A summary in hey's own layout, computed from its per-request records.

    hey prints either CSV or its summary; the study keeps the CSV and renders this view of it.
    """
    frame = run.records
    lines = ["", "Summary:"]
    if frame.empty:
        return "\n".join([*lines, "  no answers", f"  errors: {run.errors}"])
    times = frame["response_time_s"]
    lines += [
        f"  Total:\t{run.total_s:.4f} secs",
        f"  Slowest:\t{times.max():.4f} secs",
        f"  Fastest:\t{times.min():.4f} secs",
        f"  Average:\t{times.mean():.4f} secs",
        f"  Requests/sec:\t{run.answered / run.total_s:.4f}",
        "",
        "Response time histogram:",
    ]
    histogram = hey_histogram(times)
    peak = int(histogram["count"].max())
    for mark, count in zip(histogram["mark_s"], histogram["count"], strict=True):
        bar = "■" * (int(count) * 40 // peak if peak else 0)
        lines.append(f"  {mark:.3f} [{count}]\t|{bar}")
    lines += ["", "Latency distribution:"]
    for q in (10, 25, 50, 75, 90, 95, 99):
        lines.append(f"  {q}% in {percentile(times, q):.4f} secs")
    lines += ["", "Status code distribution:"]
    for code, count in frame["status_code"].value_counts().sort_index().items():
        lines.append(f"  [{code}]\t{count} responses")
    if run.errors:
        lines.append(f"  errors (no answer or non-2xx): {run.errors}")
    return "\n".join(lines) + "\n"
