"""Run metadata: the machine, the versions, the commit and the parameters behind a result."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from servebench import loadgens, paths

PYTHON_PACKAGES = (
    "onnxruntime",
    "transformers",
    "tokenizers",
    "optimum",
    "optimum-onnx",
    "torch",
    "numpy",
    "fastapi",
    "starlette",
    "uvicorn",
    "pandas",
    "matplotlib",
    "papermill",
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb(meminfo: Path = Path("/proc/meminfo")) -> float:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def machine() -> dict[str, Any]:
    from servebench.models.isa import detect_isa  # pure: reads /proc/cpuinfo

    isa = detect_isa()
    return {
        "cpu_model": cpu_model(),
        # Read at run time, never assumed: machines of one kind differ (Xeon, EPYC + VNNI).
        "int8_isa": isa.isa,
        "int8_isa_flags": isa.deciding_flags,
        "cores": os.cpu_count() or 1,
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "memory_gb": memory_gb(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
    }


def _command_version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout or result.stderr).strip()
    return text.splitlines()[0] if text else None


def cargo_lock_versions(
    crates: tuple[str, ...] = ("ort", "tokenizers", "pyo3", "actix-web"),
) -> dict:
    lock = paths.SERVICE / "rust" / "Cargo.lock"
    versions: dict[str, str] = {}
    if not lock.is_file():
        return versions
    name = None
    for line in lock.read_text().splitlines():
        if line.startswith("name = "):
            name = line.split('"')[1]
        elif line.startswith("version = ") and name in crates:
            versions[f"crate:{name}"] = line.split('"')[1]
    return versions


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in PYTHON_PACKAGES:
        try:
            found[package] = importlib_metadata.version(package)
        except importlib_metadata.PackageNotFoundError:
            found[package] = None
    found["rustc"] = _command_version(["rustc", "--version"])
    found["cargo"] = _command_version(["cargo", "--version"])
    found["hey"] = loadgens.hey_version()
    found["vegeta"] = loadgens.vegeta_version_or_none()
    found.update(cargo_lock_versions())
    return found


def git_state(root: Path = paths.ROOT) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=20
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


def read(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def update(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge fields into run_dir/metadata.json (written atomically)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    document = read(run_dir)
    document.update(fields)
    tmp = run_dir / "metadata.json.tmp"
    tmp.write_text(json.dumps(document, indent=2, sort_keys=True, default=str))
    tmp.replace(run_dir / "metadata.json")
    return document


def collect(parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameters": parameters,
        "machine": machine(),
        "versions": versions(),
        "git": git_state(),
    }
