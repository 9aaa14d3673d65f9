"""servebench.models.flops on graphs built here: one product of each counted kind with known
shapes, dynamic batch and sequence dimensions, a small BERT-like layer checked against the
closed form, its int8 variants (ONNX Runtime's own quantizers, as the study's variants use), and
the graphs the count refuses. The real model's count is in tests/test_flops_model.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from servebench.models.flops import Flops, UncountableGraph, count, per_item

pytestmark = pytest.mark.unit

F, U8 = TensorProto.FLOAT, TensorProto.UINT8
H, HEADS, INTER, LABELS = 8, 2, 16, 2  # the small encoder's sizes


def graph(nodes, inputs, inits=(), output="y", out_type=F) -> onnx.ModelProto:
    made = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(output, out_type, None)],
        initializer=[numpy_helper.from_array(a, n) for n, a in inits],
    )
    return helper.make_model(made, opset_imports=[helper.make_opsetid("", 17)])


def weight(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_a_matmul_by_a_weight_is_float_and_not_attention() -> None:
    model = graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", F, [2, 3])], [("w", weight(3, 4))]
    )
    assert count(model, tokens=1) == Flops(
        tokens=1, batch=1, fp32=2 * 2 * 3 * 4, int8=0, attention=0
    )


def test_two_activations_broadcast_as_numpy_and_count_as_attention() -> None:
    model = graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [("a", F, [2, 1, 5, 6]), ("b", F, [3, 6, 7])],
    )
    flops = count(model, tokens=1)
    assert flops.fp32 == flops.attention == 2 * (2 * 3) * 5 * 6 * 7
    assert flops.attention_share == 1.0


def test_gemm_reads_its_transposes() -> None:
    node = helper.make_node("Gemm", ["a", "w", "c"], ["y"], transA=1, transB=1)
    inits = [("w", weight(4, 3)), ("c", weight(4))]
    model = graph([node], [("a", F, [3, 5])], inits)  # A is K×M: M = 5, K = 3, N = 4
    assert count(model, tokens=1).fp32 == 2 * 5 * 3 * 4


def test_integer_products_are_int8() -> None:
    integer = helper.make_node("MatMulInteger", ["a", "w"], ["y"])
    w = ("w", np.ones((3, 4), np.uint8))
    model = graph([integer], [("a", U8, [2, 3])], [w], out_type=TensorProto.INT32)
    assert count(model, tokens=1) == Flops(1, 1, fp32=0, int8=2 * 2 * 3 * 4, attention=0)

    scales = [(n, np.float32(0.1)) for n in ("sa", "sw", "sy")]
    zeros = [(n, np.uint8(0)) for n in ("za", "zw", "zy")]
    q = helper.make_node("QLinearMatMul", ["a", "sa", "za", "w", "sw", "zw", "sy", "zy"], ["y"])
    model = graph([q], [("a", U8, [2, 3])], [w, *scales, *zeros], out_type=U8)
    assert count(model, tokens=1).int8 == 2 * 2 * 3 * 4


def test_a_qdq_product_is_int8_only_with_both_operands_dequantized() -> None:
    dq_w = helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"])
    dq_x = helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["x"])
    inits = [("wq", np.ones((3, 4), np.uint8)), ("s", np.float32(0.1)), ("z", np.uint8(0))]
    both = graph(
        [dq_w, dq_x, helper.make_node("MatMul", ["x", "w"], ["y"])], [("xq", U8, [2, 3])], inits
    )
    assert count(both, tokens=1) == Flops(1, 1, fp32=0, int8=48, attention=0)
    weight_only = graph(
        [dq_w, helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", F, [2, 3])], inits
    )
    assert count(weight_only, tokens=1) == Flops(1, 1, fp32=48, int8=0, attention=0)


def test_dynamic_batch_and_sequence_are_fixed_to_the_arguments() -> None:
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    model = graph([node], [("x", F, ["batch", "sequence", 8])], [("w", weight(8, 16))])
    assert count(model, tokens=7, batch=3).fp32 == 2 * 3 * 7 * 8 * 16
    assert count(model, tokens=7).fp32 == 2 * 7 * 8 * 16
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # untouched


def encoder() -> onnx.ModelProto:
    """One BERT layer as optimum exports it (head shapes computed from Shape of the input,
    Q·Kᵀ and scores·V as plain MatMuls), then the pooler and classifier on the first token."""
    d = H // HEADS
    inits = [(f"w{n}", weight(H, H, seed=i)) for i, n in enumerate("qkvo")]
    inits += [("w1", weight(H, INTER, seed=5)), ("w2", weight(INTER, H, seed=6))]
    inits += [("wp", weight(H, H, seed=7)), ("wc", weight(LABELS, H, seed=8))]
    inits += [("zero", np.array(0)), ("one", np.array(1)), ("ax", np.array([0]))]
    inits += [("heads", np.array([HEADS, d])), ("hidden", np.array([H]))]
    node = helper.make_node
    nodes = [node("MatMul", ["x", f"w{n}"], [n]) for n in "qkv"]
    nodes += [node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["b"])]
    nodes += [node("Gather", ["s", "one"], ["t"])]
    nodes += [node("Unsqueeze", [n, "ax"], [f"{n}1"]) for n in "bt"]
    nodes += [node("Concat", ["b1", "t1", "heads"], ["split"], axis=0)]
    nodes += [node("Concat", ["b1", "t1", "hidden"], ["merge"], axis=0)]
    nodes += [node("Reshape", [n, "split"], [f"{n}r"]) for n in "qkv"]
    nodes += [node("Transpose", ["qr"], ["qh"], perm=[0, 2, 1, 3])]
    nodes += [node("Transpose", ["kr"], ["kh"], perm=[0, 2, 3, 1])]
    nodes += [node("Transpose", ["vr"], ["vh"], perm=[0, 2, 1, 3])]
    nodes += [node("MatMul", ["qh", "kh"], ["scores"]), node("Softmax", ["scores"], ["p"])]
    nodes += [
        node("MatMul", ["p", "vh"], ["ctx"]),
        node("Transpose", ["ctx"], ["ct"], perm=[0, 2, 1, 3]),
    ]
    nodes += [node("Reshape", ["ct", "merge"], ["cm"]), node("MatMul", ["cm", "wo"], ["o"])]
    nodes += [node("Add", ["o", "x"], ["r"]), node("MatMul", ["r", "w1"], ["f1"])]
    nodes += [node("Relu", ["f1"], ["g"]), node("MatMul", ["g", "w2"], ["f2"])]
    nodes += [node("Gather", ["f2", "zero"], ["cls"], axis=1)]
    nodes += [node("Gemm", ["cls", "wp"], ["pooled"], transB=1), node("Tanh", ["pooled"], ["pt"])]
    nodes += [node("Gemm", ["pt", "wc"], ["y"], transB=1)]
    return graph(nodes, [("x", F, ["batch_size", "sequence_length", H])], inits)


def closed_form(tokens: int) -> int:
    layer = 2 * tokens * (4 * H * H + 2 * H * INTER) + 2 * 2 * tokens * tokens * H
    return layer + 2 * H * H + 2 * H * LABELS


@pytest.mark.parametrize("tokens", [1, 15, 512])
def test_a_small_encoder_counts_as_the_closed_form(tokens: int) -> None:
    flops = count(encoder(), tokens)
    assert flops == Flops(tokens, 1, closed_form(tokens), 0, 2 * 2 * tokens * tokens * H)
    assert count(encoder(), tokens, batch=4).total == 4 * flops.total


class Rows:
    """ONNX Runtime's calibration reader: a few random rows of hidden states."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.rows = iter(
            [{"x": rng.standard_normal((1, 6, H)).astype(np.float32)} for _ in range(3)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.rows, None)


def test_quantized_encoders_count_the_same_as_integer_work(tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    fp32 = tmp_path / "fp32.onnx"
    onnx.save(encoder(), fp32)
    dynamic, static = tmp_path / "int8.onnx", tmp_path / "int8-static.onnx"
    # optimum (the study's int8) quantizes Q·Kᵀ and scores·V too; ORT's own default does not.
    quantize_dynamic(fp32, dynamic, extra_options={"MatMulConstBOnly": False})
    # The study's int8-static: QDQ, MatMul only (the pooler's and classifier's Gemms stay float).
    quantize_static(
        fp32, static, Rows(), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"]
    )
    ops = {n.op_type for n in onnx.load(dynamic).graph.node} | {
        n.op_type for n in onnx.load(static).graph.node
    }
    assert {"MatMulInteger", "DequantizeLinear"} <= ops

    base = count(fp32, 15)
    head = 2 * H * H + 2 * H * LABELS
    assert count(dynamic, 15) == Flops(15, 1, fp32=0, int8=base.total, attention=base.attention)
    assert count(static, 15) == Flops(15, 1, head, base.total - head, base.attention)


def test_per_item_is_one_row_and_sees_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    onnx.save(encoder(), path)
    assert per_item(path, 15) == count(path, 15) and per_item(path, 15).total == closed_form(15)
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    onnx.save(graph([node], [("x", F, ["batch", "sequence", 3])], [("w", weight(3, 4))]), path)
    assert per_item(path, 15).total == 2 * 15 * 3 * 4


def test_what_cannot_be_counted_is_refused() -> None:
    fused = helper.make_node("Attention", ["x", "w"], ["y"], domain="com.microsoft", num_heads=2)
    model = graph([fused], [("x", F, [1, 4, 8])], [("w", weight(8, 24))])
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UncountableGraph, match=r"com\.microsoft\.Attention"):
        count(model, 4)
    conv = graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        [("x", F, [1, 1, 4, 4])],
        [("w", weight(1, 1, 3, 3))],
    )
    with pytest.raises(UncountableGraph, match="Conv"):
        count(conv, 4)
    half = graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [("x", TensorProto.FLOAT16, [2, 3])],
        [("w", weight(3, 4).astype(np.float16))],
        out_type=TensorProto.FLOAT16,
    )
    with pytest.raises(UncountableGraph, match="FLOAT16"):
        count(half, 1)
    image = graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [("x", F, [1, 2, "width"])],
        [("w", weight(3, 4))],
    )
    with pytest.raises(UncountableGraph, match="dynamic dimension 2"):
        count(image, 1)
    with pytest.raises(ValueError, match="positive"):
        count(encoder(), 0)
