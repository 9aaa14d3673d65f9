"""Latency per length class on the mixed workload (length_classes.csv, its figure and the
short answer's clause), on synthetic runs whose numbers are recomputed here from the raw
files, independently of servebench.analysis.length_classes."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import CONTROL, RUNGS, data_md_columns, make_run_dir, make_variant_run, quiet_load
from rundata_files import ERROR_TIME_S, MIXED_ERRORS, ON_THE_BOUNDS
from test_plots import figure_texts

from servebench import plots, registry, rendering
from servebench.analysis import length_classes, narrative

pytestmark = pytest.mark.unit

LEVELS = [1, 50]
KEY = ["service", "variant", "concurrency", "length_class"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_variant_run(tmp_path_factory.mktemp("runs"), mixed=LEVELS)


@pytest.fixture(scope="module")
def table(run_dir: Path) -> pd.DataFrame:
    return length_classes.length_class_table(quiet_load(run_dir), write=True)


def by_hand(run_dir: Path) -> pd.DataFrame:
    """The mixed requests of the shown services from the raw files, each with its class
    (bounds written out here) and whether it was answered."""
    requests = pd.read_csv(run_dir / "requests.csv.gz")
    workload = pd.read_csv(run_dir / "workload.csv")
    services = pd.read_csv(run_dir / "services.csv").set_index("service")
    shown = services.index[~services["control"] & ~services["rung"]]
    mixed = requests[(requests["payload"] == "mixed") & requests["service"].isin(shown)]
    mixed = mixed.merge(workload, on="seq")
    classes = pd.cut(mixed["tokens"], [0, 32, 256, np.inf], right=False, labels=False)
    return mixed.assign(
        length_class=np.array(["short", "medium", "long"])[classes],
        answered=mixed["status_code"].between(200, 299),
    )


def test_the_class_bounds() -> None:
    tokens = [1, 31, 32, 255, 256, 512]
    expected = ["short", "short", "medium", "medium", "long", "long"]
    assert list(length_classes.length_class(tokens)) == expected


def test_the_workload_is_classed_by_its_own_token_counts(run_dir: Path) -> None:
    run = quiet_load(run_dir)
    rows = length_classes.classified(run.requests, run.workload)
    assert (rows["payload"] == "mixed").all()
    first = rows.drop_duplicates("seq").set_index("seq").sort_index()
    assert list(first["tokens"].iloc[: len(ON_THE_BOUNDS)]) == list(ON_THE_BOUNDS)
    assert list(first["length_class"].iloc[:4]) == ["short", "medium", "medium", "long"]


def test_percentiles_recomputed_from_the_rows(run_dir: Path, table: pd.DataFrame) -> None:
    rows = by_hand(run_dir)
    answered = rows[rows["answered"]]
    expected = answered.groupby(KEY)["response_time_s"].agg(
        requests="size",
        p50_ms=lambda s: np.percentile(s, 50) * 1e3,
        p90_ms=lambda s: np.percentile(s, 90) * 1e3,
        p99_ms=lambda s: np.percentile(s, 99) * 1e3,
    )
    mine = table.set_index(KEY)
    assert len(mine) == len(expected) and set(mine.index) == set(expected.index)
    for column in expected.columns:
        assert np.allclose(mine.loc[expected.index, column], expected[column]), column
    # Every level, every class, each class shortest first within a unit.
    assert set(table["concurrency"]) == set(LEVELS)
    assert list(table["length_class"].iloc[:3]) == ["short", "medium", "long"]


def test_errors_are_counted_apart_and_left_out(run_dir: Path, table: pd.DataFrame) -> None:
    rows = by_hand(run_dir)
    failed = rows[~rows["answered"]]
    assert len(failed) == len(MIXED_ERRORS)  # the synthetic run's one failing burst
    counted = table[table["errors"] > 0].set_index(KEY)["errors"]
    assert counted.to_dict() == failed.groupby(KEY).size().to_dict()
    # Every request is either answered or an error; the errors' minute is in no percentile.
    every = rows.groupby(KEY).size()
    mine = table.set_index(KEY)
    assert (mine.loc[every.index, "requests"] + mine.loc[every.index, "errors"]).eq(every).all()
    assert (table["p99_ms"] < ERROR_TIME_S * 1e3).all()


def test_a_batched_service_beside_its_twin(table: pd.DataFrame) -> None:
    services = registry.load_registry()
    p99 = table.set_index(KEY)["p99_ms"]
    batched = table[table["service"].map(lambda s: services[s].batching)]
    assert set(batched["service"]) == {"python-batched", "rust-native-batched"}
    for r in batched.itertuples(index=False):
        assert r.twin == services[r.service].twin
        assert r.twin_p99_ms == p99[(r.twin, r.variant, r.concurrency, r.length_class)]
        assert r.p99_vs_twin == pytest.approx(r.p99_ms / r.twin_p99_ms)
    others = table[~table.index.isin(batched.index)]
    assert (others["twin"] == "").all()
    assert others[["twin_p99_ms", "p99_vs_twin"]].isna().all().all()


def test_the_file_as_data_md(run_dir: Path, table: pd.DataFrame) -> None:
    on_disk = pd.read_csv(run_dir / "length_classes.csv")
    assert list(on_disk.columns) == data_md_columns("length_classes.csv")
    assert len(on_disk) == len(table)


def test_rungs_and_the_control_are_left_out(run_dir: Path, tmp_path: Path) -> None:
    """The control has mixed rows of its own; a rung given some here: neither is shown."""
    copy = Path(shutil.copytree(run_dir, tmp_path / run_dir.name))
    requests = pd.read_csv(copy / "requests.csv.gz")
    loadtests = pd.read_csv(copy / "loadtests.csv")
    assert ((requests["service"] == CONTROL) & (requests["payload"] == "mixed")).any()
    rung = RUNGS[0]
    for name, frame in (("requests.csv.gz", requests), ("loadtests.csv", loadtests)):
        python = frame[(frame["service"] == "python") & (frame["payload"] == "mixed")]
        pd.concat([frame, python.assign(service=rung)]).to_csv(copy / name, index=False)
    table = length_classes.length_class_table(quiet_load(copy))
    assert not table.empty
    assert not {CONTROL, rung} & set(table["service"])


def test_the_report_shows_it_in_words(run_dir: Path, table: pd.DataFrame) -> None:
    run = quiet_load(run_dir)
    view = length_classes.shown(run, table)
    assert list(view["text length"].iloc[:3]) == [
        "short (< 32 tokens)",
        "medium (32–255 tokens)",
        "long (≥ 256 tokens)",
    ]
    assert view["service"].iloc[0] == run.label(str(table["service"].iloc[0]))
    assert (view["p99 ms"] == table["p99_ms"].round(1)).all()
    html = rendering.side_by_side([("Per length class", view)], index=False)
    assert "<th>p99 ÷ twin's</th>" in html
    assert "<th" not in html.split("<tbody>")[1]  # no index column


def test_the_figure_sets_each_batched_service_beside_its_twin(run_dir: Path) -> None:
    run = quiet_load(run_dir)
    fig = plots.draw(run, "length_classes")
    assert fig is not None
    assert len([ax for ax in fig.axes if ax.get_visible()]) == len(length_classes.CLASSES)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    twin = labels.index("Python · int8")
    assert labels[twin + 1 : twin + 3] == ["Python batched · fp32", "Python batched · int8"]
    texts = figure_texts(fig)
    assert any(t.endswith("× twin)") for t in texts)
    assert any(f"c={max(LEVELS)}" in t for t in texts)


def test_the_short_answer_states_the_short_texts_p99(run_dir: Path, table: pd.DataFrame) -> None:
    run = quiet_load(run_dir)
    sentence = narrative.batching_change(run)
    assert sentence is not None
    short = table[(table["length_class"] == "short") & (table["concurrency"] == max(LEVELS))]
    mine = short[short["service"] == "python-batched"].set_index("variant")
    p99 = " / ".join(f"{mine.at[v, 'p99_ms']:.0f}" for v in ("fp32", "int8"))
    twin = " / ".join(f"{mine.at[v, 'twin_p99_ms']:.0f}" for v in ("fp32", "int8"))
    assert f"short texts' p99 Python batched {p99} ms vs {twin} ms for its twin" in sentence


def test_a_run_without_the_mixed_workload(tmp_path: Path) -> None:
    run = quiet_load(make_run_dir(tmp_path, n=60, payloads=["seed"], concurrencies=[1, 50]))
    table = length_classes.length_class_table(run, write=True)
    assert table.empty and list(table.columns) == length_classes.COLUMNS
    written = pd.read_csv(run.path / "length_classes.csv")
    assert written.empty and list(written.columns) == length_classes.COLUMNS
    assert plots.draw(run, "length_classes") is None
    assert length_classes.shown(run, table).empty
    sentence = narrative.batching_change(run)
    assert sentence is not None and "short texts" not in sentence


def test_percentiles_pool_the_rounds() -> None:
    """Two rounds of one class: the pooled p99, not the median of each round's."""
    slow, fast = np.linspace(1.0, 2.0, 50), np.linspace(0.1, 0.2, 50)
    rows = pd.DataFrame(
        {
            "service": "s",
            "variant": "fp32",
            "concurrency": 50,
            "length_class": "short",
            "round": [0] * 50 + [1] * 50,
            "response_time_s": np.concatenate([slow, fast]),
            "status_code": 200,
        }
    )
    out = length_classes.class_latencies(rows).iloc[0]
    pooled = np.percentile(np.concatenate([slow, fast]), 99) * 1e3
    assert out["p99_ms"] == pytest.approx(pooled)
    per_round = np.median([np.percentile(slow, 99), np.percentile(fast, 99)]) * 1e3
    assert not math.isclose(out["p99_ms"], per_round)
