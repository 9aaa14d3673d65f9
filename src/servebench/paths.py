"""Where things live in the project tree."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(os.environ.get("SERVEBENCH_ROOT", Path(__file__).resolve().parents[2]))
VENV = Path(os.environ.get("SERVEBENCH_VENV", ROOT / ".venv"))
DATA = ROOT / "data"
MODELS = DATA / "models"
RUNS = DATA / "runs"
FIGURES = ROOT / "figures"
NOTEBOOKS = ROOT / "notebooks"
CONFIGS = ROOT / "configs"
SERVICE = ROOT / "service"
PAYLOADS = DATA / "payloads"
#: The mixed workload's payload name: a workload (servebench.measure.workload), not a file in
#: PAYLOADS; named here so that measuring and analysis share it without one importing the other.
MIXED = "mixed"
TOOLS_BIN = ROOT / ".tools" / "bin"


def model_slug(model_id: str) -> str:
    """A directory name for a model id: 'org/name' or a path becomes 'org--name'."""
    name = model_id.rstrip("/")
    if os.sep in name and Path(name).exists():
        name = Path(name).name
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name)


def default_model_dir(model_id: str) -> Path:
    return MODELS / model_slug(model_id)


def variant_model_dir(model_id: str, variant: str) -> Path:
    """Each model variant in its own directory: fp32 (the export) in data/models/<slug>,
    the others beside it in data/models/<slug>.<variant> (e.g. minilm-sentiment.int8)."""
    base = default_model_dir(model_id)
    return base if variant == "fp32" else base.with_name(f"{base.name}.{variant}")


def resolve(path: str | Path) -> Path:
    """A path a user typed: absolute as is; relative from the cwd if it exists there, else
    from the project root (notebooks run with the project root or notebooks/ as cwd)."""
    candidate = Path(path)
    if candidate.is_absolute():
        return candidate
    if candidate.exists():
        return candidate.resolve()
    return (ROOT / candidate).resolve()


def looks_like_path(model_id: str) -> bool:
    """A model id written as a file-system path ('/x', './x', '~/x', 'x/'), not a hub id
    ('org/name'): such an id that does not exist is a typo, not a model to download."""
    return model_id.startswith(("/", "./", "../", "~")) or model_id.endswith("/")
