"""flops.csv's arithmetic per request (servebench.models.arithmetic): the polynomial in the
tokens that three counts of the graph give, checked against the closed form of the small
encoder of test_flops, a graph that is not of that form counted at every length instead, and
a payload's row as the mean over its requests."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import helper
from test_flops import F, H, closed_form, encoder, graph

from servebench.models import arithmetic
from servebench.models.flops import count

pytestmark = pytest.mark.unit


def saved(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def test_three_counts_give_every_length(tmp_path: Path) -> None:
    counter = arithmetic.Counter(saved(encoder(), tmp_path / "model.onnx"))
    assert not counter.every_length
    for tokens in (1, 15, 100, 300, 512):
        parts = counter.parts(tokens)
        assert parts["fp32"] == closed_form(tokens)
        assert parts["attention"] == 2 * 2 * tokens * tokens * H
        assert parts["int8"] == 0


def test_a_graph_that_is_not_quadratic_is_counted_at_every_length(tmp_path: Path) -> None:
    # (x·xᵀ)·(x·xᵀ): t·t·H then t·t·t multiply-adds, cubic in the tokens.
    node = helper.make_node
    nodes = [
        node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]),
        node("MatMul", ["x", "xt"], ["s"]),
        node("MatMul", ["s", "s"], ["y"]),
    ]
    model = graph(nodes, [("x", F, ["batch_size", "sequence_length", H])])
    path = saved(model, tmp_path / "cubic.onnx")
    counter = arithmetic.Counter(path)
    assert counter.every_length
    for tokens in (5, 77):
        assert counter.parts(tokens)["fp32"] == count(path, tokens).fp32


def test_a_payload_row_is_the_mean_over_its_requests(tmp_path: Path) -> None:
    model = saved(encoder(), tmp_path / "model.onnx")
    rows = arithmetic.flops_rows({"fp32": tmp_path}, {"seed": [15], "mixed": [10, 20, 300]})
    assert model.parent == tmp_path and [r["payload"] for r in rows] == ["seed", "mixed"]
    seed, mixed = rows
    assert seed["tokens"] == 15 and seed["flop"] == closed_form(15) == seed["float_flop"]
    assert mixed["tokens"] == pytest.approx(110)
    assert mixed["flop"] == pytest.approx(sum(closed_form(t) for t in (10, 20, 300)) / 3)
    assert mixed["integer_op"] == 0
    assert mixed["attention_flop"] == pytest.approx(sum(4 * t * t * H for t in (10, 20, 300)) / 3)
