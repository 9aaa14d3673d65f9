"""The share of the core's peak (analysis/peak_share.py) on a synthetic run, recomputed here
from its raw files, and the peak's own measurement (measure/peak.py) on small graphs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rundata import OPTIONAL, make_variant_run, quiet_load

from servebench.analysis import peak_share, tables
from servebench.measure import peak
from servebench.rundir.reader import Run

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return quiet_load(make_variant_run(tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def table(run: Run) -> pd.DataFrame:
    return peak_share.peak_share(run, tables.build_summary(run))


def test_the_share_weighs_each_part_by_its_own_peak() -> None:
    top = {"fp32": 100.0, "int8": 400.0}
    # fp32 alone: achieved GFLOP/s over the peak (2 GFLOP at 25/s = 50 GFLOP/s of 100).
    assert peak_share.share(25.0, 2e9, 0.0, top) == pytest.approx(0.5)
    # 1 GFLOP float (10 ms at peak) and 4 GOP integer (10 ms at peak) in 40 ms: half.
    assert peak_share.share(25.0, 1e9, 4e9, top) == pytest.approx(0.5)
    assert math.isnan(peak_share.share(0.0, 1e9, 0.0, top))


def test_the_peak_is_the_best_shape_of_both_timings(run: Run) -> None:
    raw = pd.read_csv(run.path / "core_peak.csv")
    assert set(raw["when"]) == {"before", "after"}
    assert peak_share.peaks(run) == {
        p: pytest.approx(g["gop_per_s"].max()) for p, g in raw.groupby("precision")
    }


def test_every_rate_is_recomputed_from_the_raw_files(run: Run, table: pd.DataFrame) -> None:
    top = peak_share.peaks(run)
    flops = pd.read_csv(run.path / "flops.csv")
    flops = flops[flops["payload"] == run.seed_payload].set_index("variant")
    summary = pd.read_csv(run.path / "summary.csv").set_index(["service", "variant"])
    http = table[table["where"] == peak_share.HTTP]
    assert len(http) == len(summary)
    for r in http.itertuples(index=False):
        rate = summary.loc[(r.service, r.variant), "rps"] / run.server_cores
        f, i = flops.loc[r.variant, "float_flop"], flops.loc[r.variant, "integer_op"]
        assert r.items_per_s_per_core == pytest.approx(rate)
        assert r.gflop_per_item == pytest.approx((f + i) / 1e9)
        expected = (f / (top["fp32"] * 1e9) + i / (top["int8"] * 1e9)) * rate
        assert r.peak_share == pytest.approx(expected)
    raw = pd.read_csv(run.path / "batch_ceiling.csv")
    best = table[table["where"] == peak_share.IN_PROCESS_BEST]
    assert len(best) == len(raw.groupby(["service", "variant"]))
    for r in best.itertuples(index=False):
        mine = raw[(raw["service"] == r.service) & (raw["variant"] == r.variant)]
        per_size = mine.groupby("batch_size")["total_us"].median()
        items = per_size.index.to_numpy() * 1e6 / per_size.to_numpy()
        assert r.batch_size == per_size.index[int(np.argmax(items))]
        assert r.items_per_s_per_core == pytest.approx(items.max())
    loops = table[table["where"] == peak_share.IN_PROCESS_B1]
    kinds = {run.fact(s, "inference") for s in summary.index.get_level_values("service")}
    assert {s.removesuffix(" loop") for s in loops["service"]} == kinds


def test_int8_is_held_to_the_int8_peak_for_its_integer_part(table: pd.DataFrame) -> None:
    http = table[table["where"] == peak_share.HTTP].set_index(["service", "variant"])
    fp32, int8 = http.xs("fp32", level="variant"), http.xs("int8", level="variant")
    both = fp32.index.intersection(int8.index)
    # Integer work is cheaper at the peak: at equal GOP/s an int8 model's share is lower.
    ratio = (int8.loc[both, "peak_share"] / int8.loc[both, "achieved_gops"]) / (
        fp32.loc[both, "peak_share"] / fp32.loc[both, "achieved_gops"]
    )
    assert (ratio < 1).all()


def test_the_sentence_reads_the_batching_gain_from_the_shares(
    run: Run, table: pd.DataFrame
) -> None:
    text = peak_share.sentence(run, table)
    assert text is not None
    best = table[(table["variant"] == "fp32") & (table["where"] == peak_share.IN_PROCESS_BEST)]
    top = best.loc[best["peak_share"].idxmax()]
    raw = pd.read_csv(run.path / "batch_ceiling.csv")
    mine = raw[(raw["service"] == top["service"]) & (raw["variant"] == "fp32")]
    per_size = mine.groupby("batch_size")["total_us"].median()
    items = per_size.index.to_numpy() * 1e6 / per_size.to_numpy()
    gain = items.max() / items[0]
    alone = top["peak_share"] / gain
    assert f"at {alone * 100:.0f} % of it" in text and f"bought {gain:.2f}×" in text
    assert f"at most {1 / alone:.1f}×" in text


def test_a_run_without_the_peak_has_no_table(tmp_path: Path) -> None:
    without = [name for name in OPTIONAL if name != "core_peak"]
    old = quiet_load(make_variant_run(tmp_path, optional=without))
    assert old.core_peak is None
    assert peak_share.peak_share(old, tables.build_summary(old)).empty


def write_model(path: Path, weights: dict[str, tuple[int, int]], transposed: set[str]) -> Path:
    """A graph of MatMuls (and Gemms with transB for the names in ``transposed``) on
    constant weights of the given shapes, chained from one input."""
    from onnx import TensorProto, helper, numpy_helper, save

    nodes, inits, last = [], [], "x"
    for k, (name, dims) in enumerate(weights.items()):
        inits.append(numpy_helper.from_array(np.zeros(dims, np.float32), name))
        op = "Gemm" if name in transposed else "MatMul"
        extra = {"transB": 1} if name in transposed else {}
        nodes.append(helper.make_node(op, [last, name], [f"y{k}"], **extra))
        last = f"y{k}"
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 384])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)],
        inits,
    )
    save(helper.make_model(graph), str(path))
    return path


def test_the_model_weight_shapes_are_its_wide_matmuls(tmp_path: Path) -> None:
    weights = {"up": (384, 1536), "down": (1536, 384), "pool": (384, 384), "head": (2, 384)}
    model = write_model(tmp_path / "m.onnx", weights, transposed={"pool", "head"})
    # Gemm's transB weight is (n, k); the two-label head is too narrow to measure a peak by.
    assert peak.weight_shapes(model) == [(384, 1536), (1536, 384), (384, 384)]
    shapes = peak.shapes(model)
    assert shapes[0] == peak.Shape(*peak.SQUARE)
    assert len(shapes) == 1 + 3 * len(peak.ROWS)


@pytest.mark.parametrize("precision", peak.PRECISIONS)
def test_the_timed_graph_computes_the_product(precision: str) -> None:
    import onnxruntime as ort
    from onnx import load_from_string, numpy_helper

    shape = peak.Shape(8, 16, 4)
    graph = peak.matmul_model(precision, shape)
    weight = numpy_helper.to_array(load_from_string(graph).graph.initializer[0])
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    a = peak.activation(precision, shape)
    (y,) = session.run(None, {"a": a})
    assert y.shape == (8, 4)
    np.testing.assert_allclose(y, a.astype(np.float64) @ weight.astype(np.float64), rtol=1e-4)
    row = peak.time_shape(precision, shape, seconds=0.01)
    assert row["calls"] >= 3 and row["gop_per_s"] == pytest.approx(shape.ops / row["best_s"] / 1e9)


def test_one_core_of_the_server_list_and_the_best_of_rows() -> None:
    assert peak.first_cpu("2-3,6") == "2" and peak.first_cpu("5") == "5"
    assert peak.first_cpu(None) is None
    assert peak.command(Path("m.onnx"), "2-3")[:3] == ["taskset", "-c", "2"]
    rows = [
        {"precision": "fp32", "gop_per_s": "90"}, {"precision": "fp32", "gop_per_s": "110"},
        {"precision": "int8", "gop_per_s": "400"},
    ]  # fmt: skip
    assert peak.best(rows) == {"fp32": 110.0, "int8": 400.0}
