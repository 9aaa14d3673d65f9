"""Run metadata is complete and written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servebench import metadata

pytestmark = pytest.mark.unit


def test_collect_records_machine_versions_and_commit() -> None:
    document = metadata.collect({"max_rounds": 3})
    assert document["parameters"] == {"max_rounds": 3}
    machine = document["machine"]
    assert machine["cores"] >= 1 and machine["cpu_model"]
    versions = document["versions"]
    for package in ("python", "onnxruntime", "transformers", "fastapi", "uvicorn"):
        assert versions[package], package
    assert versions["hey"] and "hey" in versions["hey"]
    assert "crate:ort" in versions and versions["crate:ort"].startswith("2.0.0")
    assert len(document["git"]["commit"] or "") == 40


def test_update_merges_fields(tmp_path: Path) -> None:
    metadata.update(tmp_path, status="running", run_id="r1")
    metadata.update(tmp_path, status="complete")
    stored = json.loads((tmp_path / "metadata.json").read_text())
    assert stored == {"status": "complete", "run_id": "r1"}
    assert not (tmp_path / "metadata.json.tmp").exists()


def test_cpu_model_reads_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU @ 1GHz\n")
    assert metadata.cpu_model(cpuinfo) == "Test CPU @ 1GHz"
