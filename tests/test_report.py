"""The report notebooks end to end: papermill runs 03 and 04 on synthetic run directories."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from rundata import OPTIONAL, make_run_dir, make_variant_run

from servebench import paths, plots

pytestmark = pytest.mark.e2e


def execute(notebook: str, out: Path, parameters: dict[str, str]) -> nbformat.NotebookNode:
    papermill = pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager

    if "servebench" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("kernel 'servebench' not registered")
    papermill.execute_notebook(
        str(paths.NOTEBOOKS / notebook),
        str(out),
        parameters=parameters,
        kernel_name="servebench",
        cwd=str(paths.ROOT),
        progress_bar=False,
    )
    return nbformat.read(out, as_version=4)


def test_report_notebook_runs(tmp_path: Path) -> None:
    run_dir = make_run_dir(tmp_path / "runs", n=120, concurrencies=[1, 8, 50], mixed=[8, 50])
    executed = execute("03_report.ipynb", tmp_path / "out.ipynb", {"run_dir": str(run_dir)})
    for name in plots.FIGURES:
        assert (run_dir / "figures" / f"{name}.png").is_file(), name
    assert (run_dir / "summary.csv").is_file() and (run_dir / "per_config.csv").is_file()
    assert (run_dir / "length_classes.csv").is_file()
    outputs = json.dumps([cell.get("outputs", []) for cell in executed.cells])
    assert "Difference %" in outputs and "Fastest at the seed point" in outputs
    # Every figure is inlined with its caption; nothing is written to stderr.
    assert outputs.count("<figcaption") == len(plots.FIGURES)
    assert outputs.count("data:image/png;base64,") == len(plots.FIGURES)
    streams = [o for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert streams == []
    # Interleaved: the paired ratios with their intervals, the points and what missed the target.
    assert (run_dir / "ratios.csv").is_file()
    outputs = json.dumps([cell.get("outputs", []) for cell in executed.cells], ensure_ascii=False)
    assert "ratio [95 % CI]" in outputs and "÷ baseline [95 % CI]" in outputs
    assert "points did not converge" in outputs and "**Precision**" in outputs
    assert "short of it:" in outputs
    # The mixed workload per length class: its table, and the short texts in the short answer.
    assert "p99 ÷ twin's" in outputs and "short texts' p99" in outputs


def test_report_notebook_runs_on_a_run_without_points(tmp_path: Path) -> None:
    optional = [name for name in OPTIONAL if name not in ("points", "drift")]
    run_dir = make_run_dir(
        tmp_path / "runs", n=60, concurrencies=[1, 50], optional=optional, mixed=[50]
    )
    executed = execute("03_report.ipynb", tmp_path / "out.ipynb", {"run_dir": str(run_dir)})
    outputs = json.dumps([cell.get("outputs", []) for cell in executed.cells], ensure_ascii=False)
    assert "No points.csv" in outputs and "3–12 rounds (adaptive) per point" in outputs
    assert "drift: skipped" in outputs  # no drift.csv
    assert outputs.count("<figcaption") == len(plots.FIGURES) - 1


def test_report_notebook_runs_with_variants(tmp_path: Path) -> None:
    """A run with fp32 and int8: the int8 seed table, the factors, the faithfulness table."""
    run_dir = make_variant_run(tmp_path / "runs")
    executed = execute("03_report.ipynb", tmp_path / "out.ipynb", {"run_dir": str(run_dir)})
    assert (run_dir / "figures" / "variant_rps.png").is_file()
    outputs = json.dumps([c.get("outputs", []) for c in executed.cells], ensure_ascii=False)
    assert "int8: the seed&#x27;s table with every service serving the int8 model" in outputs
    # variants.csv headed in words (its label_agreement column as the report names it)
    assert "int8 ÷ fp32" in outputs and "label agreement with fp32, %" in outputs
    assert "**int8**: in process" in outputs  # the short answer says what int8 changes
    assert "Python · int8" in outputs  # the per-payload grids have a row per variant
    assert "No mixed workload in this run" in outputs  # and no length classes to show


def test_compare_notebook_runs(tmp_path: Path) -> None:
    a = make_run_dir(tmp_path / "a", n=60, payloads=["seed"], concurrencies=[1, 50])
    b = make_run_dir(tmp_path / "b", n=60, seed=3, payloads=["seed"], concurrencies=[1, 50])
    out = tmp_path / "cmp"
    execute(
        "04_compare_runs.ipynb",
        tmp_path / "out.ipynb",
        {"run_a": str(a), "run_b": str(b), "out_dir": str(out)},
    )
    assert (out / "compare.csv").is_file() and (out / "compare.png").is_file()
