"""The batching policy's defaults, read from service/batching_policy.json (the one place they are
written; rust-native-batched compiles the same file in, and the study's configuration takes
them as its defaults).

Pure (the standard library only): the harness imports it without the services' dependencies.
The file is found beside the package's folder (service/), which the editable install keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servekit.plan import Limits

POLICY_FILE = Path(__file__).resolve().parents[2] / "batching_policy.json"
# Each default's name and type (the range checks are the services' and the config's).
FIELDS: dict[str, type] = {
    "max_batch_size": int,
    "max_batch_tokens": int,
    "max_batch_delay_us": int,
    "max_queue": int,
    "max_padding": float,
    "max_wait_ms": int,
    "schedule": str,
}
#: The schedules (CONTRACT.md "Which requests run next"), the default's first in the file.
SCHEDULES = ("batch", "continuous")


def read_defaults(path: Path = POLICY_FILE) -> dict[str, Any]:
    """The file's `defaults`, checked: every field present, of its type, nothing else."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: servekit reads the project's batching policy, so install it "
            "editable from the project (pip install --no-deps -e service/python)"
        )
    defaults = json.loads(path.read_text())["defaults"]
    if set(defaults) != set(FIELDS):
        raise ValueError(f"{path}: defaults must name exactly {', '.join(FIELDS)}")
    for name, kind in FIELDS.items():
        value = defaults[name]
        if kind is str:
            if value not in SCHEDULES:
                raise ValueError(f"{path}: {name} must be one of {', '.join(SCHEDULES)}")
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{path}: {name} must be a number, got {value!r}")
        if kind is int and not isinstance(value, int):
            raise ValueError(f"{path}: {name} must be an integer, got {value!r}")
        defaults[name] = kind(value)
    return defaults


DEFAULTS: dict[str, Any] = read_defaults()


@dataclass(frozen=True)
class BatchSettings:
    """The batching flags of service/CONTRACT.md ("Batched services", "Extra flags"); each
    defaults to service/batching_policy.json."""

    max_batch_size: int = DEFAULTS["max_batch_size"]
    max_batch_tokens: int = DEFAULTS["max_batch_tokens"]
    max_batch_delay_us: int = DEFAULTS["max_batch_delay_us"]
    max_queue: int = DEFAULTS["max_queue"]
    max_padding: float = DEFAULTS["max_padding"]
    max_wait_ms: int = DEFAULTS["max_wait_ms"]
    schedule: str = DEFAULTS["schedule"]

    @property
    def limits(self) -> Limits:
        """What the scheduler needs of these settings (servekit.plan)."""
        return Limits(
            max_batch_size=self.max_batch_size,
            max_batch_tokens=self.max_batch_tokens,
            max_padding=self.max_padding,
            max_wait_ms=self.max_wait_ms,
        )
