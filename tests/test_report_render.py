"""report.html from a synthetic run, through the pipeline's render path (papermill runs
notebook 03, then ``pipeline.render_report``), checked in headless Chromium as a reader
would see it: the structure of the report without a full pipeline run."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import browser
import nbformat
import pytest
from rundata import make_variant_run
from test_report import execute

from servebench import metadata, pipeline, plots
from servebench.process import RUN_TAG

pytestmark = pytest.mark.system

#: The report's sections, in the order a reader meets them.
SECTIONS = [
    "The seed's table, on this machine",
    "The short answer",
    "What the model variant changes",
    "Paired ratios",
    "Per payload",
    "Concurrency sweep",
    "Open loop",
    "Resources",
    "Stability",
    "Method",
    "Machine and versions",
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, browser.PageCheck]:
    run_dir = make_variant_run(tmp_path_factory.mktemp("runs"), mixed=[50])
    # As in the pipeline: notebook 03 runs while the run is still "running" ...
    metadata.update(run_dir, status="running", finished=None)
    executed = run_dir / "notebooks" / "03_report.ipynb"
    executed.parent.mkdir()
    os.environ[RUN_TAG] = run_dir.name  # the pipeline's kernel carries the run's tag
    try:
        execute("03_report.ipynb", executed, {"run_dir": str(run_dir)})
    finally:
        del os.environ[RUN_TAG]
    # ... and an earlier notebook's tool noise must stay out of the report.
    noisy = nbformat.v4.new_notebook()
    noisy.cells.append(nbformat.v4.new_code_cell("export()"))
    noisy.cells[0].outputs = [nbformat.v4.new_output("stream", name="stderr", text="TqdmWarning")]
    nbformat.write(noisy, run_dir / "notebooks" / "01_export_model.ipynb")
    # The report is rendered once the run is marked complete.
    metadata.update(run_dir, status="complete", finished=metadata.now_iso())
    report = pipeline.render_report(
        run_dir, [run_dir / "notebooks" / "01_export_model.ipynb", executed]
    )
    page = browser.check_report(report, run_dir / "report-page.png", run_dir / "report-first.png")
    return run_dir, page


def test_the_first_results_are_on_the_first_screen(
    rendered: tuple[Path, browser.PageCheck],
) -> None:
    _, page = rendered
    assert page.tops["seed_table"] is not None and page.tops["seed_table"] < browser.VIEWPORT[1]
    assert page.tops["first_figure"] is not None
    assert page.tops["first_figure"] < browser.VIEWPORT[1]
    first = page.first_screen
    assert first is not None and first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", first.read_bytes()[16:24]) == browser.VIEWPORT


#: What a noisier run does to the short answer, done to the rendered page: every bullet
#: written out three more times (more caveats, longer intervals, more "read with care").
LONGER_ANSWER = """(() => {
  const heading = [...document.querySelectorAll('h2')]
    .find(h => h.textContent.startsWith('The short answer'));
  const after = Node.DOCUMENT_POSITION_FOLLOWING;
  const ul = [...document.querySelectorAll('ul')]
    .find(u => heading.compareDocumentPosition(u) & after);
  const items = [...ul.children];
  for (let i = 0; i < 3; i++) for (const li of items) ul.appendChild(li.cloneNode(true));
  return items.length;
})()"""


def test_the_first_screen_does_not_depend_on_the_short_answers_length(
    rendered: tuple[Path, browser.PageCheck],
) -> None:
    """The layout check of a real run must not depend on how noisy the run was: the seed's
    table and the first figure stay where they are when the short answer is four times longer."""
    run_dir, page = rendered
    longer = browser.check_report(
        run_dir / "report.html", run_dir / "report-longer.png", script=LONGER_ANSWER
    )
    assert longer.height > page.height + 200  # the answer did grow
    for name in ("seed_table", "first_figure"):
        assert longer.tops[name] == page.tops[name], name


def test_no_table_or_figure_is_wider_than_the_window(
    rendered: tuple[Path, browser.PageCheck],
) -> None:
    """At the reader's viewport every table and figure fits: none past the window's right
    edge, none in a box the reader must scroll sideways."""
    _, page = rendered
    assert page.tables >= 10 and page.images >= 10  # the check saw the report's tables
    assert page.too_wide == (), page.too_wide
    assert page.widest <= page.page_width


def test_no_code_and_no_stderr(rendered: tuple[Path, browser.PageCheck]) -> None:
    run_dir, page = rendered
    assert page.counts["inputs"] == 0
    assert page.counts["stderr"] == 0
    html = (run_dir / "report.html").read_text()
    assert "TqdmWarning" not in html and "import warnings" not in html


def test_every_figure_loads_with_a_caption(rendered: tuple[Path, browser.PageCheck]) -> None:
    run_dir, page = rendered
    assert page.images == page.counts["figures"] == len(plots.FIGURES)
    assert page.broken_images == 0
    assert page.uncaptioned_figures == 0 and page.images_outside_figures == 0
    for spec in plots.FIGURES.values():
        assert spec.caption in page.text
    html = (run_dir / "report.html").read_text()
    assert 'src="figures/' not in html  # one self-contained page: the PNGs are inlined


def test_the_status_is_the_finished_runs(rendered: tuple[Path, browser.PageCheck]) -> None:
    _, page = rendered
    assert page.status == "complete"
    assert "running" not in page.text


def test_sections_in_order_and_executed_notebooks_linked(
    rendered: tuple[Path, browser.PageCheck],
) -> None:
    run_dir, page = rendered
    lines = page.text.splitlines()
    # A section starts a line of its own (its heading); prose may name it earlier.
    positions = [next((i for i, t in enumerate(lines) if t.startswith(s)), -1) for s in SECTIONS]
    assert -1 not in positions, dict(zip(SECTIONS, positions, strict=True))
    assert positions == sorted(positions)
    html = (run_dir / "report.html").read_text()
    for name in ("notebooks/01_export_model.ipynb", "notebooks/03_report.ipynb", "summary.csv"):
        assert f'href="{name}"' in html
    assert "Requests/sec" in page.text and "**" not in page.text  # markdown was rendered
