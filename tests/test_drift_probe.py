"""The drift monitor's probe as the run uses it: one process on the exported model."""

from __future__ import annotations

from pathlib import Path

import pytest

from servebench import paths
from servebench.measure.drift import DriftProbe

pytestmark = pytest.mark.system


def test_the_drift_probe_times_the_seed_sentence_in_one_long_lived_process(
    model_dir: Path,
) -> None:
    with DriftProbe(model_dir, paths.PAYLOADS / "seed.txt", threads=1, cpus="0") as probe:
        first, second = probe.measure(5), probe.measure(5)
        popen = probe.popen
        assert popen is not None
    assert (first["seq"], second["seq"]) == (0, 1)
    assert second["elapsed_s"] > first["elapsed_s"] > 0
    # a MiniLM sentence takes milliseconds, not microseconds or seconds
    assert 200 < first["probe_us"] < 200_000 and first["iterations"] == 5
    assert popen.poll() is not None  # leaving the block ended it
