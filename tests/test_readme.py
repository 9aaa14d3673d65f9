"""The README's results section is generated from a run's data, never typed by hand."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rundata import make_run_dir, make_variant_run, with_old_names

from servebench import paths, plots, readme
from servebench.analysis import ratios, tables

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run_dir(tmp_path_factory.mktemp("run") / "r")
    meta = json.loads((run / "metadata.json").read_text())
    meta.setdefault("run_id", run.name)
    (run / "metadata.json").write_text(json.dumps(meta))
    tables.build_summary(run)
    plots.make_figures(run, run / "figures")
    return run


def test_markdown_table_has_a_row_per_record() -> None:
    table = readme.markdown_table(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]


def test_results_show_every_service_with_its_measured_rps(run_dir: Path) -> None:
    text = readme.results_markdown(run_dir)
    summary = pd.read_csv(run_dir / "summary.csv")
    for row in summary.itertuples():
        assert f"| {row.label} | {row.rps:.0f} (" in text
    assert "Requests/sec" in text and "Difference" in text
    assert "(seconds; Difference: best Rust vs Python)" in text
    for name in plots.FIGURES:
        assert f"![{name}](figures/{name}.png)" in text


def test_readme_command_line_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "servebench.readme", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "run_dir" in result.stdout


def test_payload_table_has_every_payload_and_service(run_dir: Path) -> None:
    table = readme.payload_table(run_dir)
    per_config = tables.per_config(run_dir)
    payloads = ("seed", "short", "medium", "long")
    assert list(table["payload"]) == [f"`{p}` (req/s at c=50)" for p in payloads]
    row = per_config[
        (per_config["service"] == "python")
        & (per_config["payload"] == "long")
        & (per_config["concurrency"] == 50)
    ].iloc[0]
    cell = table.loc[table["payload"] == "`long` (req/s at c=50)", "Python"].iloc[0]
    assert cell.startswith(f"{row.rps:.0f} req/s · ")
    assert "Rust native release" in table.columns and "–" not in cell
    # A payload measured at c=1 only (the study's cross through the seed point): its c=1 rate.
    crossed = per_config[(per_config["payload"] != "long") | (per_config["concurrency"] == 1)]
    only_c1 = readme.payload_table(run_dir, per_config=crossed)
    c1 = per_config[
        (per_config["service"] == "python")
        & (per_config["payload"] == "long")
        & (per_config["concurrency"] == 1)
    ].iloc[0]
    long_row = only_c1[only_c1["payload"] == "`long` (req/s at c=1)"]
    assert long_row["Python"].iloc[0].startswith(f"{c1.rps:.0f} req/s · ")


def test_update_replaces_only_the_marked_section(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(f"intro\n{readme.BEGIN}\nstale numbers\n{readme.END}\noutro\n")
    figures = tmp_path / "figures"
    readme.update_readme(run_dir, readme=target, reference=tmp_path / "reference", figures=figures)
    text = target.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "stale numbers" not in text and readme.results_markdown(run_dir) in text
    copied = pd.read_csv(tmp_path / "reference" / "summary.csv")
    assert copied.equals(pd.read_csv(run_dir / "summary.csv"))
    for name in ("rps_bars", "payloads"):
        published = (figures / f"{name}.png").read_bytes()
        assert published == (run_dir / "figures" / f"{name}.png").read_bytes()
    # a run without a rendered report publishes none and links none
    assert not (tmp_path / "reference" / "report.html").exists()
    assert "report.html" not in text


def test_the_rendered_report_is_published_and_linked(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "report.html").write_text("<html>the report</html>")
    target = tmp_path / "README.md"
    target.write_text(f"{readme.BEGIN}\n{readme.END}\n")
    reference = tmp_path / "reference"
    readme.update_readme(run, readme=target, reference=reference, figures=tmp_path / "figures")
    assert (reference / "report.html").read_text() == "<html>the report</html>"
    assert "[`data/reference/report.html`](data/reference/report.html)" in target.read_text()


def test_update_refuses_a_readme_without_markers(run_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "plain.md").write_text("no markers")
    with pytest.raises(ValueError, match="markers"):
        readme.update_readme(run_dir, readme=tmp_path / "plain.md", reference=tmp_path / "ref")


def test_results_with_int8_add_its_table_and_the_factors(tmp_path: Path) -> None:
    run = make_variant_run(tmp_path, payloads=["seed", "short", "medium", "long"])
    tables.build_summary(run)
    text = readme.results_markdown(run)
    summary = pd.read_csv(run / "summary.csv")
    fp32, int8 = summary[summary["variant"] == "fp32"], summary[summary["variant"] == "int8"]
    # The seed's table and the table beyond it stay fp32: one row per service, as before.
    for row in fp32.itertuples():
        assert f"| {row.label} | {row.rps:.0f} (" in text
    assert "(seconds, fp32 model; Difference: best Rust vs Python)" in text
    assert "**The int8 model**" in text and "labels agree with fp32 on 99.2% of 400" in text
    for row in int8.itertuples():
        assert f"| {row.label} | {row.rps:.0f} ({row.rps_min:.0f}–" in text
        assert f"×{row.variant_factor:.2f}" in text
    assert "**What moves throughput**" in text and "| python in process |" in text
    # A run of fp32 alone has neither.
    fp32_run = make_run_dir(tmp_path / "fp32", n=60, concurrencies=[1, 50])
    tables.build_summary(fp32_run)
    alone = readme.results_markdown(fp32_run)
    assert "int8" not in alone and "What moves throughput" not in alone


def test_results_say_how_each_point_was_measured(tmp_path: Path) -> None:
    """The run's rounds and target; a run written before issue 21's names reads the same."""
    new = make_variant_run(tmp_path / "new", rounds={("seed", 50): 5})
    tables.build_summary(new)
    text = readme.results_markdown(new)
    assert "3–5 rounds per point in counterbalanced orders" in text
    assert "within ±3 %" in text and "repeat" not in text
    # The paired ratios and their intervals, from ratios.csv and summary.csv.
    summary = pd.read_csv(new / "summary.csv")
    native = summary[(summary["service"] == "rust-native-release")].set_index("variant")
    fp32 = native.loc["fp32"]
    assert f"| {ratios.formatted(fp32.ratio, fp32.ratio_ci_low, fp32.ratio_ci_high)} |" in text
    int8 = native.loc["int8"]
    assert f"×{int8.variant_factor:.2f} [{int8.variant_factor_ci_low:.2f}–" in text
    assert "| – |" in text  # the baseline's own language factor
    old = with_old_names(shutil.copytree(new, tmp_path / "old" / new.name))
    assert "repeats" in pd.read_csv(old / "summary.csv")
    assert readme.results_markdown(old) == text


def test_update_copies_the_ratios_and_points(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "README.md"
    target.write_text(f"{readme.BEGIN}\n{readme.END}\n")
    readme.update_readme(run_dir, readme=target, reference=tmp_path / "ref", figures=tmp_path / "f")
    for name in ("ratios.csv", "points.csv"):
        assert (tmp_path / "ref" / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_published_metadata_names_project_paths_relatively(run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    meta = json.loads((run / "metadata.json").read_text())
    # A model exported by another checkout (a cached export keeps the paths it was made
    # with) names that checkout's model store: published, it is the project's store too.
    elsewhere = "/elsewhere/checkout/data/models/.cache/m-1"
    meta["model"] = {"dir": str(paths.ROOT / "data" / "models" / "m"), "source": elsewhere}
    (run / "metadata.json").write_text(json.dumps(meta))
    target = tmp_path / "README.md"
    target.write_text(f"{readme.BEGIN}\n{readme.END}\n")
    readme.update_readme(run, readme=target, reference=tmp_path / "ref", figures=tmp_path / "f")
    published = json.loads((tmp_path / "ref" / "metadata.json").read_text())
    assert published["model"] == {"dir": "data/models/m", "source": "data/models/.cache/m-1"}
