"""One unit's life cycle (measure/lifecycle.py): what a start writes, with the service's
answers and timings stubbed (the real ones are the system and end-to-end tiers')."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from servebench import registry
from servebench.measure import lifecycle
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
