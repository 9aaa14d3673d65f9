"""Writing a run directory while it is measured (layout: docs/DATA.md).

Rows are appended as they are measured, so a run that fails half-way keeps what it had.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd


class RunWriter:
    """Appends tidy rows and raw records to one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        for folder in ("raw", "hey", "logs"):
            (run_dir / folder).mkdir(parents=True, exist_ok=True)

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def append(self, name: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        path = self.run_dir / name
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def hey_run(self, key: dict[str, Any], records: pd.DataFrame, summary: str) -> None:
        """One hey run's per-request records (raw/) and its text summary (hey/), rendered in
        hey's layout by the caller: the writer knows files, not load generators."""
        stem = self.records(key, records)
        (self.run_dir / "hey" / f"{stem}.txt").write_text(summary)

    def records(self, key: dict[str, Any], records: pd.DataFrame) -> str:
        """One load-generator run's per-request records under raw/; returns their stem."""
        point = (key["service"], key["variant"], key["payload"])
        stem = "__".join([*point, f"c{key['concurrency']}", f"r{key['round']}"])
        records = records.copy()
        for column, value in reversed(list(key.items())):
            records.insert(0, column, value)
        records.to_csv(self.run_dir / "raw" / f"{stem}.csv", index=False)
        return stem

    def combine_requests(self) -> Path:
        """raw/*.csv -> requests.csv.gz, once every hey run is in."""
        parts = sorted((self.run_dir / "raw").glob("*.csv"))
        if not parts:
            raise RuntimeError(f"no hey records under {self.run_dir / 'raw'}")
        target = self.run_dir / "requests.csv.gz"
        pd.concat([pd.read_csv(p) for p in parts], ignore_index=True).to_csv(
            target, index=False, compression="gzip"
        )
        return target
