"""The report's tables as a reader gets them, without a browser: every table notebook 03
prints is headed in words (no snake_case column, no bare index) and narrow enough for the
page once its headers and cells wrap at their spaces (rendering.side_by_side lets them), so
none needs a scroll bar at the reader's viewport (browser.VIEWPORT; the browser tests
measure the real page)."""

from __future__ import annotations

import re
import warnings

import pandas as pd
import pytest
from rundata import make_variant_run

from servebench import rendering
from servebench.analysis import (
    batching,
    factors,
    ladder,
    measures,
    peak_share,
    quantized,
    ratios,
    seed,
    shown,
    stability,
    tables,
)
from servebench.rundir import reader

pytestmark = pytest.mark.unit

#: The page's width at the reader's viewport (1,400 px less the scroll bar and margins).
PAGE_PX = 1340
#: A wide character of the tables' 12 px sans-serif (digits ~7 px, capitals up to 9 px),
#: and a cell's padding and borders: a generous estimate, so a pass here is a pass there.
CHAR_PX = 8
CELL_PX = 12
SNAKE = re.compile(r"[a-z0-9]_[a-z0-9]")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> reader.Run:
    run_dir = make_variant_run(tmp_path_factory.mktemp("runs"), mixed=[50])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reader.load_run(run_dir)


def shown_tables(run: reader.Run) -> dict[str, pd.DataFrame]:
    """Every table notebook 03 prints without an index, as it prints it."""
    summary = tables.build_summary(run, write=False)
    seed_ratios = ratios.at_point(tables.ratios(run), run.seed_payload, run.seed_concurrency)
    printed = {
        "paired summary": ratios.summary_shown(run, seed.of_variant(summary)),
        "lead": ladder.lead_shown(run),
        "faithfulness": factors.faithfulness_shown(factors.faithfulness(run)),
        "served": quantized.served_shown(run, quantized.served_table(run, summary)),
        "paired ratios": ratios.readable_shown(run, seed_ratios),
        "per payload": shown.by_payload(tables.by_payload(run, "rps")),
        "twins": batching.twin_shown(run, batching.twin_table(run)),
        "batching ceiling": batching.ceiling_shown(run, batching.batch_ceiling(run)),
        "stages": measures.stages_shown(run, measures.stage_decomposition(run)),
        "points": stability.points_shown(stability.points_table(run)),
        "unstable": shown.unstable(run, tables.unstable_configs(run)),
        "ceilings": shown.ceilings(tables.ceilings(run)),
        "parity": shown.parity(run, run.parity),
        "services": shown.facts(run),
        "peak share": peak_share.shown(run, peak_share.peak_share(run, summary)),
    }
    if run.soak is not None:
        printed["soak"] = shown.soak(run, run.soak)
    return printed


def min_width_px(frame: pd.DataFrame) -> int:
    """The narrowest the table can be drawn: each column as wide as its longest word, of
    its header or of any cell (both wrap at spaces; a number never breaks)."""

    def longest(text: object) -> int:
        return max((len(w) for w in str(text).split()), default=0)

    widths = [max([longest(c), *(longest(v) for v in frame[c].astype(str))]) for c in frame.columns]
    return sum(w * CHAR_PX + CELL_PX for w in widths)


def test_every_table_is_headed_in_words(run: reader.Run) -> None:
    for name, frame in shown_tables(run).items():
        assert len(frame), name  # the run has something to show in each
        for column in frame.columns:
            assert isinstance(column, str) and column.strip(), (name, column)
            assert not SNAKE.search(column), (name, column)
        assert isinstance(frame.index, pd.RangeIndex), name  # printed without it
        html = rendering.side_by_side([(name, frame)], index=False)
        assert "<th" not in html.split("<tbody>")[1], name  # no index column


def test_every_table_fits_the_page(run: reader.Run) -> None:
    for name, frame in shown_tables(run).items():
        assert min_width_px(frame) <= PAGE_PX, (name, min_width_px(frame))


def test_the_summary_is_one_table_per_variant_headed_in_words(run: reader.Run) -> None:
    summary = tables.build_summary(run, write=False)
    grids = shown.summary(run, summary)
    assert [v for v, _ in grids] == run.variants_in_order()
    for _, grid in grids:
        assert not any(SNAKE.search(str(r)) for r in grid.index)
        assert min_width_px(grid.reset_index()) <= PAGE_PX


def test_a_table_too_wide_for_the_page_is_caught() -> None:
    """The estimate is not vacuous: twenty columns of long numbers do not fit."""
    frame = pd.DataFrame({f"column {i}": [123456.789] for i in range(20)})
    assert min_width_px(frame) > PAGE_PX


def test_numbers_are_rounded_for_reading(run: reader.Run) -> None:
    """No cell carries more than four decimals (pandas' default prints six)."""
    for name, frame in shown_tables(run).items():
        for column in frame.select_dtypes("number").columns:
            values = frame[column].dropna().astype(float)
            assert (values.round(4) == values).all(), (name, column)
