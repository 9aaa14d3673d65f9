"""Closed-loop load with a different body per request: vegeta with JSON targets.

hey sends one body for a whole run. The mixed workload needs each request to carry its own
text, in a fixed order, which vegeta's JSON targets do (one target per line, each with its
body). With ``-rate=0`` vegeta has no pacer: ``-workers=c -max-workers=c`` goroutines each send
their next request as soon as their previous answer is in, which is hey's closed loop at
concurrency c. With ``-lazy`` it reads the targets one by one and stops when they run out, so
a run is exactly ``len(bodies)`` requests (vegeta then records one "no targets to attack" row,
which is dropped here). Each body's index rides in its URL's query (``?seq=k``) and is read
back from the result's URL: vegeta's own sequence numbers may pair a request with a
neighbouring body. Responses are kept (``-max-body=-1``) so each answer's label and the
batched services' ``x-batch-size`` / ``x-queue-time`` headers are recorded per request.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
import urllib.parse
from pathlib import Path

import pandas as pd

from servebench.client import BATCH_HEADERS, STAGE_HEADERS
from servebench.loadrun import ClosedLoopRun
from servebench.measure.vegeta import attack_and_encode, vegeta_path

NO_TARGETS = "no targets to attack"
#: The query parameter carrying a body's index (its `seq`) in the target URL.
SEQ_PARAM = "seq"
# The per-request columns; hey's own (DNS, request write, ...) stay empty for these runs.
RECORD_COLUMNS = (
    "seq",
    "offset_s",
    "response_time_s",
    "status_code",
    "error",
    "label",
    *STAGE_HEADERS.values(),
    *BATCH_HEADERS.values(),
)


def targets_jsonl(url: str, bodies: list[bytes]) -> str:
    """vegeta's JSON target format: one POST per line, the body base64-encoded, its index in
    the URL's query (``?seq=k``, which the services ignore) so that each answer is matched
    with its own body: vegeta numbers a request (its ``seq``) and reads its target under two
    different locks, so with several workers request k may carry body k±1."""
    header = {"Content-Type": ["application/json"]}
    glue = "&" if "?" in url else "?"
    lines = [
        json.dumps(
            {
                "method": "POST",
                "url": f"{url}{glue}{SEQ_PARAM}={k}",
                "header": header,
                "body": base64.b64encode(b).decode(),
            }
        )
        for k, b in enumerate(bodies)
    ]
    return "\n".join(lines) + "\n"


def _seq(url: str, vegetas: str) -> int:
    """The body's index from the target URL's query; vegeta's own number without one."""
    found = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(SEQ_PARAM)
    return int(found[-1]) if found else int(vegetas)


def _headers(encoded: str) -> dict[str, str]:
    text = base64.b64decode(encoded).decode("latin-1") if encoded else ""
    found = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


def _label(encoded: str) -> str:
    try:
        document = json.loads(base64.b64decode(encoded)) if encoded else None
    except ValueError:
        return ""
    return str(document.get("label", "")) if isinstance(document, dict) else ""


def parse_results(text: str) -> pd.DataFrame:
    """``vegeta encode -to csv`` rows -> RECORD_COLUMNS by seq; offsets from the first send."""
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if not row or row[5] == NO_TARGETS:
            continue
        headers = _headers(row[11]) if len(row) > 11 else {}
        record = {
            "seq": _seq(row[10] if len(row) > 10 else "", row[8]),
            "timestamp_ns": int(row[0]),
            "response_time_s": int(row[2]) / 1e9,
            "status_code": int(row[1]),
            "error": row[5],
            "label": _label(row[6]),
        }
        for header, column in {**STAGE_HEADERS, **BATCH_HEADERS}.items():
            value = headers.get(header, "")
            record[column] = int(value) if value.isdigit() else None
        rows.append(record)
    frame = pd.DataFrame(rows, columns=["timestamp_ns", *RECORD_COLUMNS])
    if not frame.empty:
        first = frame["timestamp_ns"].min()
        frame["offset_s"] = (frame["timestamp_ns"] - first) / 1e9
    frame = frame.drop(columns="timestamp_ns").sort_values("seq", ignore_index=True)
    return frame[list(RECORD_COLUMNS)]


def run_closed_loop(
    url: str,
    bodies: list[bytes],
    concurrency: int,
    *,
    cpus: str | None = None,
    timeout_s: float = 30.0,
) -> ClosedLoopRun:
    """POST every body once, in order, from `concurrency` workers that each wait for their
    answer before sending again (vegeta under ``taskset -c cpus`` when cpus is given)."""
    if concurrency < 1 or not bodies:
        raise ValueError("a closed-loop run needs concurrency >= 1 and at least one body")
    vegeta = vegeta_path()
    with tempfile.TemporaryDirectory(prefix="servebench-closed-") as tmp:
        targets = Path(tmp) / "targets.jsonl"
        targets.write_text(targets_jsonl(url, bodies))
        results = Path(tmp) / "results.bin"
        flags = [
            "-format=json",
            "-lazy",
            f"-targets={targets}",
            "-rate=0",
            f"-workers={concurrency}",
            f"-max-workers={concurrency}",
            f"-timeout={round(timeout_s * 1000)}ms",
            "-max-body=-1",
        ]
        encoded, attack = attack_and_encode(vegeta, flags, results, cpus)
    records = parse_results(encoded)
    return ClosedLoopRun(
        records,
        requested=len(bodies),
        concurrency=concurrency,
        wall_s=attack.wall_s,
        loadgen_cpu_s=attack.cpu_s,
    )
