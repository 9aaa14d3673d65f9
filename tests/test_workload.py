"""The mixed workload (measure/workload.py): fixed by its seed, lengths as documented."""

from __future__ import annotations

from collections import Counter

import pytest

from servebench.measure import workload

pytestmark = pytest.mark.unit


def test_the_mixed_workload_is_fixed_by_its_seed() -> None:
    first = workload.mixed_requests(500, seed=3)
    assert first == workload.mixed_requests(500, seed=3)
    assert first != workload.mixed_requests(500, seed=4)
    assert workload.mixed_requests(100, seed=3) == first[:100]  # a prefix, whatever the count


def test_the_mixed_workload_spreads_lengths_as_documented() -> None:
    sentences = workload.source_sentences()
    texts = workload.mixed_requests(4000, seed=11)
    kinds = Counter(
        "short" if t in sentences else ("long" if len(t.split(". ")) > 20 else "medium")
        for t in texts
    )
    assert kinds["short"] / 4000 == pytest.approx(workload.SHORT_SHARE, abs=0.02)
    assert kinds["medium"] / 4000 == pytest.approx(workload.MEDIUM_SHARE, abs=0.015)
    assert kinds["long"] / 4000 == pytest.approx(workload.LONG_SHARE, abs=0.008)
    assert max(len(t) for t in texts) > 2000  # past 512 tokens: truncated by the services
    assert [workload.kind_of(x) for x in (0.0, 0.899, 0.9, 0.979, 0.98, 0.999)] == [
        "short", "short", "medium", "medium", "long", "long",
    ]  # fmt: skip


def test_the_workload_needs_sentences() -> None:
    with pytest.raises(ValueError, match="at least one source sentence"):
        workload.mixed_requests(3, seed=1, sentences=[])
