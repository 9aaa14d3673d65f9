"""resources.py against real processes (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time

import pytest

from servebench.measure import resources
from servebench.measure.resources import (
    ResourceSampler,
    cpu_seconds,
    dir_size_mb,
    process_tree,
    rss_bytes,
)

# Real processes read through /proc (the study runs on Linux only).
pytestmark = pytest.mark.unit

# Allocates ~100 MiB (touched, so resident), starts a sleeping child and waits until its
# interpreter has started (before that its RSS is a few pages), burns CPU for ~1 s,
# then waits to be told to stop (stdin closes).
WORKLOAD = textwrap.dedent(
    """
    import subprocess, sys, time
    blob = bytearray(100 * 1024 * 1024)
    for i in range(0, len(blob), 4096):
        blob[i] = 1
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    child.stdout.readline()         # its interpreter is loaded: RSS no longer moving
    print(child.pid, flush=True)
    sys.stdin.readline()            # "go"
    end = time.process_time() + 1.0
    x = 0
    while time.process_time() < end:
        x += 1
    print("done", flush=True)
    sys.stdin.readline()            # "exit"
    child.kill()
    child.wait()
    """
)


@pytest.fixture()
def workload():
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKLOAD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    child_pid = int(proc.stdout.readline())
    try:
        yield proc, child_pid
    finally:
        proc.kill()
        proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child_pid, 9)


def test_tree_includes_child(workload):
    proc, child_pid = workload
    tree = process_tree(proc.pid)
    assert tree[0] == proc.pid
    assert child_pid in tree
    assert os.getpid() not in tree


def test_tree_scan_fallback_matches(workload, monkeypatch):
    proc, child_pid = workload
    monkeypatch.setattr(resources, "_children_from_task_files", lambda pid: None)
    assert set(process_tree(proc.pid)) == {proc.pid, child_pid}


def test_sampler_real_process(workload):
    proc, _child = workload
    assert proc.stdin is not None and proc.stdout is not None
    t0 = time.perf_counter()
    with ResourceSampler(proc.pid, interval_s=0.05) as s:
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"
    wall = time.perf_counter() - t0
    assert s.peak_rss_mb >= 90
    assert s.rss_end_mb >= 90
    assert s.rss_start_mb >= 90
    assert s.samples >= 10
    assert 0.5 <= s.cpu_seconds <= wall + 0.05  # +50 ms: CLK_TCK rounding of several processes
    assert s.wall_s <= wall


def test_rss_sums_over_tree(workload):
    proc, child_pid = workload
    whole = rss_bytes(process_tree(proc.pid))
    parent, child = rss_bytes([proc.pid]), rss_bytes([child_pid])
    assert whole > parent > 90 * resources.MIB
    assert child > 1 * resources.MIB
    # Each read is a separate /proc snapshot of live processes, whose RSS moves by a few
    # pages between reads; the child (several MiB) must be counted, not double-counted.
    assert abs(whole - parent - child) < 512 * 1024


def test_vanished_process_is_ignored():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # reaped: the pid no longer exists
    assert process_tree(proc.pid) == []
    assert cpu_seconds([proc.pid]) == 0.0
    assert rss_bytes([proc.pid]) == 0
    me = os.getpid()
    assert rss_bytes([me, proc.pid]) == rss_bytes([me])
    with pytest.raises(ProcessLookupError), ResourceSampler(proc.pid):
        pass


def test_sampler_survives_exit_of_measured_tree():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    with ResourceSampler(proc.pid, interval_s=0.02) as s:
        proc.wait()
        time.sleep(0.1)  # a few samples after the process is gone
    assert s.rss_end_mb == 0.0
    assert s.peak_rss_mb > 0
    assert s.cpu_seconds == 0.0


def test_reaped_child_cpu_is_counted():
    """A child that burns CPU and is reaped inside the window still counts (cutime)."""
    script = textwrap.dedent(
        """
        import subprocess, sys
        sys.stdin.readline()
        burn = "import time\\nend = time.process_time() + 0.6\\n"
        burn += "while time.process_time() < end: pass"
        subprocess.run([sys.executable, "-c", burn], check=True)
        print("done", flush=True)
        sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        with ResourceSampler(proc.pid) as s:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "done"
        assert s.cpu_seconds >= 0.5
    finally:
        proc.kill()
        proc.wait()


def test_dir_size_counts_files_once_and_skips_symlinks(tmp_path):
    d = tmp_path / "pkg"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"x" * 1_000_000)
    (d / "sub" / "b.bin").write_bytes(b"y" * 500_000)
    os.link(d / "a.bin", d / "sub" / "hard.bin")  # same inode: counted once
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"z" * 2_000_000)
    (d / "link.bin").symlink_to(outside)  # not followed
    (d / "linkdir").symlink_to(tmp_path)  # not followed
    expected = 1_500_000 / resources.MIB
    assert dir_size_mb([d]) == pytest.approx(expected)
    assert dir_size_mb([d, d / "a.bin"]) == pytest.approx(expected)  # overlap counted once
    assert dir_size_mb([d / "link.bin"]) == pytest.approx(2_000_000 / resources.MIB)
    assert dir_size_mb([tmp_path / "missing"]) == 0.0
