"""One unit's life cycle (measure/lifecycle.py): what a start writes, with the service's
answers and timings stubbed (the real ones are the system and end-to-end tiers')."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from servebench import process, registry
from servebench.loadrun import ClosedLoopRun
from servebench.measure import lifecycle, run_counts
from servebench.measure.plan import Unit
from servebench.rundir.writer import RunWriter

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("start", [0, 1])
def test_a_start_is_numbered_and_only_the_first_times_the_stages(
    start: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages = [{"client_us": 900.0 + i, "tokenization_us": 100.0} for i in range(3)]
    monkeypatch.setattr(lifecycle, "first_correct_answer", lambda *_: 1.5)
    monkeypatch.setattr(lifecycle, "verify", lambda *_, **__: [{"sentence_id": 0, "ok": True}])
    monkeypatch.setattr(lifecycle, "warm_up", lambda *_: None)
    monkeypatch.setattr(lifecycle, "measure_stages", lambda *_: stages)
    service = next(iter(registry.load_registry().values()))
    unit = Unit(service, "int8", tmp_path)
    plan: Any = SimpleNamespace(
        points=lambda _: [("seed", 1), ("seed", 50), ("long", 1)],
        payloads={"seed": "a sentence", "long": "a longer text"},
        study=SimpleNamespace(stage_requests=3),
        batch_invariant={"int8": False},
    )
    sentences = [{"id": "s0", "text": "fine"}]
    writer = RunWriter(tmp_path / "run")
    proc: Any = None  # every call that would use the process is stubbed
    latency = lifecycle.prepare(plan, unit, proc, writer, sentences, {"s0": {}}, start=start)
    run = tmp_path / "run"
    coldstarts = pd.read_csv(run / "coldstarts.csv")
    assert coldstarts.to_dict("records") == [
        {"service": service.name, "variant": "int8", "start": start, "cold_start_s": 1.5}
    ]
    if start:  # the fresh process of the soak and open loop: no parity, no stage timings
        assert latency == {} and not (run / "stages.csv").exists()
        assert not (run / "parity.csv").exists()
        return
    assert latency == {"seed": 901e-6, "long": 901e-6}
    timed = pd.read_csv(run / "stages.csv")
    assert list(timed.columns) == ["service", "variant", "payload", "client_us", "tokenization_us"]
    assert timed["payload"].tolist() == ["seed"] * 3 + ["long"] * 3


def test_a_bursts_run_counts_are_the_change_of_the_services_counts() -> None:
    before = {"runs": 10, "rows": 30, "tokens": 300, "positions": 360}
    after = {"runs": 14, "rows": 50, "tokens": 500, "positions": 620}
    assert run_counts.burst_columns(before, after) == {
        "batch_runs": 4, "batch_rows": 20, "batch_tokens": 200, "batch_positions": 260,
    }  # fmt: skip
    # An unbatched service: the same columns, empty, and /stats is never asked.
    assert run_counts.burst_columns(None, None) == dict.fromkeys(run_counts.COLUMNS)
    unbatched: Any = SimpleNamespace(service=SimpleNamespace(batching=False))
    assert run_counts.read(unbatched) is None


def test_every_loadtests_row_has_the_run_count_columns() -> None:
    sampler: Any = SimpleNamespace(cpu_seconds=2.0, peak_rss_mb=100.0, rss_end_mb=90.0)
    counted = run_counts.burst_columns(None, None)
    records = pd.DataFrame(
        {"status_code": [200] * 100, "offset_s": np.linspace(0, 0.9, 100), "response_time_s": 0.1}
    )
    run = ClosedLoopRun(records, requested=100, concurrency=10, wall_s=1.25, loadgen_cpu_s=0.5)
    row = lifecycle.point_row(run, sampler, counted)
    assert list(row)[-4:] == list(run_counts.COLUMNS)
    assert all(row[column] is None for column in run_counts.COLUMNS)
    assert (row["n"], row["errors"], row["rps"]) == (100, 0, pytest.approx(100 / 1.0))
    assert (row["loadgen_cpu_s"], row["loadgen_wall_s"]) == (0.5, 1.25)


def test_a_load_generators_cpu_time_is_measured_as_its_child_process() -> None:
    """run_child counts the CPU a child burns (a busy loop of ~0.3 s) and not a sleeping one."""
    busy = [
        sys.executable,
        "-c",
        "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass",
    ]
    idle = [sys.executable, "-c", "import time; time.sleep(0.3)"]
    spun, slept = process.run_child(busy), process.run_child(idle)
    assert spun.result.returncode == 0 and spun.cpu_s >= 0.25
    assert slept.wall_s >= 0.3 and slept.cpu_s < 0.25
