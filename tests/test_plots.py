"""The figure registry on synthetic runs: every figure drawn, and a new service in each."""

from __future__ import annotations

import io
import itertools
import math
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from rundata import make_bare_run, make_run_dir, make_variant_run

from servebench import plots, registry
from servebench.analysis import inprocess, paired, ratios, stability, tables
from servebench.plots import stability as stability_plots
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
    return make_run_dir(tmp_path_factory.mktemp("runs"), n=80, concurrencies=[1, 50], mixed=[50])


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
    assert made["drift"] is None  # no drift.csv
    assert made["histograms"] is not None and made["resources"] is not None


def test_colours_come_from_the_facts() -> None:
    facts, _ = reader.service_facts(["python", "extra-svc", "other"])
    colors = style.service_colors(facts)
    assert colors["python"] == registry.load_registry()["python"].color
    assert len({colors["extra-svc"], colors["other"], colors["python"]}) == 3


# Figures that show batched services only (and their twins), and none (the machine's drift).
BATCHED_ONLY = {"batching", "batch_ceiling"}
#: The ladder's figure shows the ladder and the services of another language beside it.
LADDER_ONLY = {"ladder"}
NO_SERVICE = {"drift"}


@pytest.fixture(scope="module")
def twin_run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    """A run of the fixture registry: the project's services plus python-twin."""
    root = tmp_path_factory.mktemp("twin")
    rd = make_run_dir(root, n=60, registry_file=FIXTURE_REGISTRY, concurrencies=[1, 50], mixed=[50])
    return reader.load_run(rd)


def test_a_registered_service_needs_no_code_change(twin_run: reader.Run, tmp_path: Path) -> None:
    fixture = registry.load_registry(FIXTURE_REGISTRY)
    twin = fixture[TWIN]
    # an A/A control: ratios only; a rung: the ladder and the ratios only
    shown = [s for s in fixture if not fixture[s].control and not fixture[s].rung]
    assert twin_run.services_in_order() == sorted(shown, key=lambda s: fixture[s].order)
    tables.build_summary(twin_run)
    summary = pd.read_csv(twin_run.path / "summary.csv").set_index("service")
    per_config = pd.read_csv(twin_run.path / "per_config.csv")
    assert summary.loc[TWIN, "label"] == twin.label
    assert set(per_config.loc[per_config["service"] == TWIN, "payload"]) == {
        "seed",
        "short",
        "medium",
        "long",
        "mixed",
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
        if (name in BATCHED_ONLY and not twin.batching) or name in NO_SERVICE | LADDER_ONLY:
            continue
        texts = figure_texts(fig)
        assert any(twin.label in t for t in texts), (name, sorted(texts))


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    """The fixture registry's services (python-twin included), each with fp32 and int8."""
    rd = make_variant_run(tmp_path_factory.mktemp("variants"), registry_file=FIXTURE_REGISTRY)
    return reader.load_run(rd)


def test_every_variant_is_in_the_tables_and_figures(variant_run: reader.Run) -> None:
    tables.build_summary(variant_run)
    summary = pd.read_csv(variant_run.path / "summary.csv")
    per_config = pd.read_csv(variant_run.path / "per_config.csv")
    for frame in (summary, per_config):
        assert set(frame.loc[frame["service"] == TWIN, "variant"]) == {"fp32", "int8"}
    twin = registry.load_registry(FIXTURE_REGISTRY)[TWIN].label
    texts = figure_texts(plots.draw(variant_run, "variant_rps"))
    assert {"model fp32", "model int8"} <= texts
    assert any(twin == t for t in texts)  # a group per service, labelled by the service
    assert any(t.startswith("python · int8 in-process ceiling") for t in texts)
    assert any(t.startswith("rust · fp32 in-process ceiling") for t in texts)
    # Where a figure draws a bar or line per service, it draws one per service and variant.
    for name in ("rps_bars", "latency_cdf", "throughput_latency", "decomposition", "payloads"):
        texts = figure_texts(plots.draw(variant_run, name))
        assert {f"{twin} · fp32", f"{twin} · int8"} <= texts, (name, sorted(texts))
    for name in ("openloop", "resources"):
        assert f"{twin} · int8" in figure_texts(plots.draw(variant_run, name)), name
    # hey's histograms: fp32 only, and the title says so.
    texts = figure_texts(plots.draw(variant_run, "histograms"))
    assert not any("int8" in t for t in texts)
    assert any("fp32 model" in t for t in texts)


def test_ratio_figures_show_every_seed_ratio_and_flag_the_unconverged(run_dir: Path) -> None:
    """The services' ratios in one figure, those of the in-process limits in another:
    together every ratio of the seed point, each once."""
    run = reader.load_run(run_dir)
    seed = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    for name, kinds in (("paired_ratios", paired.KINDS), ("in_process_ratios", inprocess.KINDS)):
        fig = plots.draw(run, name)
        assert fig is not None
        mine = seed[seed["kind"].isin(kinds)]
        assert len(mine) and set(mine["kind"]) <= set(kinds)
        texts = figure_texts(fig)
        for r in mine.itertuples(index=False):
            assert ratios.formatted(r.ratio, r.ratio_ci_low, r.ratio_ci_high) in texts
        # One marker per ratio, hollow exactly when it did not converge.
        markers = [
            line
            for ax in fig.axes
            for line in ax.get_lines()
            if line.get_marker() in {"o", "^", "s", "D"} and len(line.get_xdata()) == 1
        ]
        assert len(markers) == len(mine), name
        hollow = sum(line.get_markerfacecolor() == "white" for line in markers)
        assert hollow == int((~mine["converged"].astype(bool)).sum()), name
    assert not seed["converged"].astype(bool).all()  # the rundata has something to flag


def test_drift_figure_states_the_probe_range(run_dir: Path) -> None:
    run = reader.load_run(run_dir)
    fig = plots.draw(run, "drift")
    assert fig is not None
    texts = figure_texts(fig)
    spread = stability.drift_range_pct(run)
    assert any(f"ranged {spread:.1f} %" in t for t in texts)
    labels = {
        f"{p} c={c}" for p, c in zip(run.points["payload"], run.points["concurrency"], strict=True)
    }
    assert labels <= texts  # every point's stretch is named


def test_figures_count_rounds(tmp_path: Path) -> None:
    run = reader.load_run(make_run_dir(tmp_path, n=60, concurrencies=[1, 50]))
    texts = " ".join(figure_texts(plots.draw(run, "rps_bars")))
    assert "3 rounds" in texts
    for name in ("histograms", "latency_cdf", "throughput_latency"):
        texts = " ".join(figure_texts(plots.draw(run, name)))
        assert "round" in texts and "repeat" not in texts, name


@pytest.mark.parametrize(("left", "right"), [(0.85, 1.3), (0.2, 30.0), (0.45, 25.0), (0.9, 3.0)])
def test_ratio_ticks_never_crowd(left: float, right: float) -> None:
    """A noisy run's wide intervals widen the axis; its labels must still not overlap."""
    ticks = stability_plots.ratio_ticks(left, right)
    gap = math.log(right / left) / 9
    assert 1.0 in ticks and set(ticks) <= set(stability_plots.NICE_RATIOS)
    assert all(left <= t <= right for t in ticks)
    assert all(math.log(b / a) >= gap for a, b in itertools.pairwise(ticks))
    assert len(ticks) >= 3


def crowded(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of texts a reader cannot tell apart: neighbouring tick labels of an axis that
    overlap (rotated ones: closer, across their slant, than a line of text is tall), two
    values printed in the same axes over each other, and a legend over a printed value."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    found = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            ticks = [*axis.get_major_ticks(), *axis.get_minor_ticks()]
            labels = [
                t.label1
                for t in ticks
                if t.label1.get_visible() and t.label1.get_text() and low <= t.get_loc() <= high
            ]
            for a, b in itertools.pairwise(labels):
                box_a, box_b = a.get_window_extent(renderer), b.get_window_extent(renderer)
                slant = a.get_rotation() % 180
                if slant % 90 == 0:
                    apart = not box_a.overlaps(box_b)
                else:
                    step = (
                        abs(box_a.x1 - box_b.x1) if axis is ax.xaxis else abs(box_a.y1 - box_b.y1)
                    )
                    tall = a.get_fontsize() * fig.dpi / 72 * (a.get_text().count("\n") + 1)
                    apart = step * math.sin(math.radians(slant)) >= tall
                if not apart:
                    found.append((a.get_text(), b.get_text()))
        printed = [t for t in ax.texts if t.get_visible() and t.get_text().strip()]
        for a, b in itertools.combinations(printed, 2):
            if a.get_window_extent(renderer).overlaps(b.get_window_extent(renderer)):
                found.append((a.get_text(), b.get_text()))
        legend = ax.get_legend()
        if legend is not None:
            box = legend.get_window_extent(renderer)
            found += [
                ("legend", t.get_text())
                for t in ax.texts
                if t.get_visible() and t.get_window_extent(renderer).overlaps(box)
            ]
    return found


@pytest.mark.parametrize("name", list(plots.FIGURES))
def test_no_label_hides_another(name: str, variant_run: reader.Run, run_dir: Path) -> None:
    """Every figure, on a run of every service with two variants (the long labels) and on
    one with the mixed workload: tick labels apart, printed values apart, no legend over a
    printed value."""
    for run in (variant_run, reader.load_run(run_dir)):
        fig = plots.draw(run, name)
        if fig is not None:
            assert crowded(fig) == [], name
