"""process.confined_to: the orchestrator leaves the server's CPUs alone while it measures."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from servebench.process import confined_to

pytestmark = pytest.mark.unit


def thread_masks() -> dict[int, set[int]]:
    return {
        int(t.name): os.sched_getaffinity(int(t.name)) for t in Path("/proc/self/task").iterdir()
    }


def test_confined_to_moves_every_thread_and_restores_them() -> None:
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.fail("this test needs two usable CPUs to tell a confined mask from the original")
    target = [usable[-1]]
    release = threading.Event()
    seen_inside: list[set[int]] = []
    earlier = threading.Thread(target=release.wait)  # started before the block
    earlier.start()
    try:
        before = thread_masks()
        with confined_to(target):
            assert all(mask == set(target) for mask in thread_masks().values())
            later = threading.Thread(target=lambda: seen_inside.append(os.sched_getaffinity(0)))
            later.start()
            later.join()
        assert seen_inside == [set(target)]  # threads started inside inherit the mask
        after = thread_masks()
        assert {tid: after[tid] for tid in before} == before
    finally:
        release.set()
        earlier.join()


def test_confined_to_restores_after_an_error_and_is_a_no_op_without_cpus() -> None:
    original = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), confined_to([sorted(original)[0]]):
        raise RuntimeError("a failing measurement")
    assert os.sched_getaffinity(0) == original
    with confined_to(None):
        assert os.sched_getaffinity(0) == original
