"""CPU time, memory and size-on-disk of a server, read straight from /proc (Linux only).

Why /proc and not psutil: every number in the report should be traceable to one kernel file.

- ``process_tree(pid)``: the pid and all its live descendants, from
  ``/proc/<pid>/task/<tid>/children`` (falls back to scanning the ppid of every ``/proc/<n>/stat``
  when the kernel does not provide ``children``).
- ``cpu_seconds(pids)``: ``utime + stime + cutime + cstime`` from ``/proc/<pid>/stat`` divided by
  ``SC_CLK_TCK`` (usually 100 Hz, so the resolution is 10 ms per process).
  *Decision on cutime/cstime*: they are included. They hold the CPU of children that already
  exited and were reaped by a member of the tree. Across a measuring window (end minus start)
  this keeps the total conserved: a worker that is alive at the start and reaped before the end
  moves its time from its own ``utime`` into its parent's ``cutime`` instead of vanishing, and a
  short-lived helper spawned and reaped inside the window is still counted. Time of children
  reaped *before* the window cancels out in the difference. Only use differences, never the
  absolute value, as "CPU used during a run". Not covered: processes re-parented out of the tree
  (e.g. daemonised grandchildren) and a tree root that itself exits.
- ``rss_bytes(pids)``: ``VmRSS`` from ``/proc/<pid>/status`` summed over the tree. Pages shared
  between processes (copy-on-write after fork, shared libraries) are counted once per process, so
  for multi-process servers the sum overstates the memory (every service here runs one
  process per server, so the sum is that process's RSS).
- ``ResourceSampler``: context manager; a thread samples the tree's RSS every ``interval_s``.
- ``dir_size_mb(paths)``: apparent size of files, each inode counted once, symlinks not followed.

Units: "MB" in this module (and the ``*_mb`` columns it feeds) means MiB, 2**20 bytes.
Vanished processes (exited between listing and reading) are silently skipped everywhere.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

PROC = Path("/proc")
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Fields of /proc/<pid>/stat after "pid (comm) ", 0-based: state=0, ppid=1, utime=11, stime=12,
# cutime=13, cstime=14 (proc(5) numbers them 3, 4, 14, 15, 16, 17).
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME = 1, 11, 12, 13, 14


def _read_text(path: Path) -> str | None:
    """File content, or None when the process behind it is gone (or not ours to read)."""
    try:
        return path.read_text()
    except OSError:  # ENOENT, ESRCH (process being torn down), EACCES
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    text = _read_text(PROC / str(pid) / "stat")
    if text is None:
        return None
    return text[text.rindex(")") + 2 :].split()


def _children_from_task_files(pid: int) -> list[int] | None:
    """Children of every thread of pid; None when the kernel has no 'children' files."""
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return []
    children: list[int] = []
    for tid in tids:
        path = PROC / str(pid) / "task" / tid / "children"
        text = _read_text(path)
        if text is None:
            if not path.parent.exists():  # thread exited meanwhile
                continue
            return None  # thread is there but 'children' is not: CONFIG_PROC_CHILDREN is off
        children.extend(int(c) for c in text.split())
    return children


def _ppid_map() -> dict[int, list[int]]:
    """parent pid -> child pids, from scanning every /proc/<n>/stat."""
    by_parent: dict[int, list[int]] = {}
    for entry in os.listdir(PROC):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            by_parent.setdefault(int(fields[_PPID]), []).append(int(entry))
    return by_parent


def process_tree(pid: int) -> list[int]:
    """pid followed by all its live descendants (breadth first); [] when pid is gone."""
    if _stat_fields(pid) is None:
        return []
    tree = [pid]
    by_parent: dict[int, list[int]] | None = None
    i = 0
    while i < len(tree):
        children = _children_from_task_files(tree[i])
        if children is None:
            if by_parent is None:
                by_parent = _ppid_map()
            children = by_parent.get(tree[i], [])
        tree.extend(c for c in children if c not in tree)
        i += 1
    return tree


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of pids, including their reaped children (see module doc)."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += sum(int(fields[i]) for i in (_UTIME, _STIME, _CUTIME, _CSTIME))
    return ticks / CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    text = _read_text(PROC / str(pid) / "status")
    if text is None:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0  # kernel threads and zombies have no VmRSS


def rss_bytes(pids: Iterable[int]) -> int:
    """Sum of VmRSS (resident set size) over pids, in bytes."""
    return sum(_status_kib(pid, "VmRSS") for pid in pids) * 1024


class ResourceSampler:
    """Measure a process tree while a block runs.

    ``with ResourceSampler(server_pid) as s: run_load()`` then read ``s.cpu_seconds`` (tree CPU
    used during the block), ``s.peak_rss_mb`` (highest sampled tree RSS, including one sample at
    the start and one at the end), ``s.rss_end_mb``, ``s.rss_start_mb``, ``s.wall_s`` and
    ``s.samples``. The tree is re-listed at every sample, so workers forked during the block are
    included. A peak shorter than ``interval_s`` can be missed.
    """

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.pid = pid
        self.interval_s = interval_s
        self.cpu_seconds = 0.0
        self.peak_rss_bytes = 0
        self.rss_start_bytes = 0
        self.rss_end_bytes = 0
        self.wall_s = 0.0
        self.samples = 0
        self._cpu_start = 0.0
        self._t_start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def peak_rss_mb(self) -> float:
        return self.peak_rss_bytes / MIB

    @property
    def rss_start_mb(self) -> float:
        return self.rss_start_bytes / MIB

    @property
    def rss_end_mb(self) -> float:
        return self.rss_end_bytes / MIB

    def _sample(self) -> tuple[list[int], int]:
        tree = process_tree(self.pid)
        rss = rss_bytes(tree)
        with self._lock:
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self.samples += 1
        return tree, rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> ResourceSampler:
        tree, self.rss_start_bytes = self._sample()
        if not tree:
            raise ProcessLookupError(f"no process with pid {self.pid}")
        self._cpu_start = cpu_seconds(tree)
        self._t_start = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ResourceSampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.wall_s = time.perf_counter() - self._t_start
        tree, self.rss_end_bytes = self._sample()
        # A tree root that exited leaves nothing to read: report what was used until then as 0
        # rather than a negative number.
        self.cpu_seconds = max(0.0, cpu_seconds(tree) - self._cpu_start) if tree else 0.0


def dir_size_bytes(paths: Iterable[str | os.PathLike[str]]) -> int:
    """Apparent size (st_size) of the regular files under paths.

    Each file is counted once even when reached twice (hard links, overlapping paths). Symlinks
    inside directories are not followed and not counted; a path given explicitly is resolved
    first, so passing ``.venv/bin/python`` counts the interpreter it points to.
    Missing paths count 0.
    """
    seen: set[tuple[int, int]] = set()
    total = 0

    def add(st: os.stat_result) -> None:
        nonlocal total
        key = (st.st_dev, st.st_ino)
        if key not in seen:
            seen.add(key)
            total += st.st_size

    for raw in paths:
        top = Path(raw).resolve()
        if top.is_file():
            add(top.stat())
            continue
        for dirpath, _dirnames, filenames in os.walk(top, followlinks=False):
            for name in filenames:
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    add(st)
    return total


def dir_size_mb(paths: Iterable[str | os.PathLike[str]]) -> float:
    """dir_size_bytes in MiB."""
    return dir_size_bytes(paths) / MIB
