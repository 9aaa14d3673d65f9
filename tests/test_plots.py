"""The figure registry on synthetic runs: every figure drawn, and a new service in each."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from rundata import make_bare_run, make_run_dir

from servebench import plots, registry
from servebench.analysis import tables
from servebench.plots import style
from servebench.rundir import reader

pytestmark = pytest.mark.unit

FIXTURE_REGISTRY = Path(__file__).parent / "fixtures" / "registry.yaml"
TWIN = "python-twin"


def figure_texts(fig: Figure) -> set[str]:
    """Every text a reader sees in a figure: titles, tick labels, legends, annotations."""
    fig.savefig(io.BytesIO(), format="png")  # lays out the ticks, so their labels exist
    return {t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run_dir(tmp_path_factory.mktemp("runs"), n=80, concurrencies=[1, 50])


def test_all_figures_written(run_dir: Path, tmp_path: Path) -> None:
    run = reader.load_run(run_dir)
    out = [tmp_path / "figs", run_dir / "figures"]
    made = plots.make_figures(run, out)
    assert list(made) == list(plots.FIGURES)
    for name, path in made.items():
        assert path is not None, name
        for d in out:
            f = d / f"{name}.png"
            assert f.is_file() and f.stat().st_size > 10_000, f


def test_every_figure_has_a_one_line_caption() -> None:
    for name, spec in plots.FIGURES.items():
        assert spec.caption.endswith(".") and "\n" not in spec.caption, name
        assert callable(spec.draw), name


def test_optional_files_missing_are_skipped(tmp_path: Path) -> None:
    rd = make_bare_run(tmp_path)
    with pytest.warns(UserWarning):
        made = plots.make_figures(rd, tmp_path / "figs")
    assert made["decomposition"] is None and made["openloop"] is None
    assert made["histograms"] is not None and made["resources"] is not None


def test_colours_come_from_the_facts() -> None:
    facts, _ = reader.service_facts(["python", "extra-svc", "other"])
    colors = style.service_colors(facts)
    assert colors["python"] == registry.load_registry()["python"].color
    assert len({colors["extra-svc"], colors["other"], colors["python"]}) == 3


@pytest.fixture(scope="module")
def twin_run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    """A run of the fixture registry: the project's services plus python-twin."""
    root = tmp_path_factory.mktemp("twin")
    rd = make_run_dir(root, n=60, registry_file=FIXTURE_REGISTRY, concurrencies=[1, 50])
    return reader.load_run(rd)


def test_a_registered_service_needs_no_code_change(twin_run: reader.Run, tmp_path: Path) -> None:
    fixture = registry.load_registry(FIXTURE_REGISTRY)
    twin = fixture[TWIN]
    assert twin_run.services_in_order() == sorted(fixture, key=lambda s: fixture[s].order)
    tables.build_summary(twin_run)
    summary = pd.read_csv(twin_run.path / "summary.csv").set_index("service")
    per_config = pd.read_csv(twin_run.path / "per_config.csv")
    assert summary.loc[TWIN, "label"] == twin.label
    assert set(per_config.loc[per_config["service"] == TWIN, "payload"]) == {
        "seed",
        "short",
        "medium",
        "long",
    }
    base = summary.loc[twin.baseline, "rps"]
    assert summary.loc[TWIN, "difference_pct"] == pytest.approx(
        (summary.loc[TWIN, "rps"] - base) / base * 100
    )
    assert summary.loc[TWIN, "ceiling_rps"] == summary.loc[twin.baseline, "ceiling_rps"]
    assert style.colors(twin_run)[TWIN] == twin.color
    for name, spec in plots.FIGURES.items():
        fig = spec.draw(twin_run)
        assert fig is not None, name
        texts = figure_texts(fig)
        assert any(twin.label in t for t in texts), (name, sorted(texts))
