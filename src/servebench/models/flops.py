"""The arithmetic of one forward pass, counted from the ONNX graph rather than from a formula.

:func:`count` fixes the graph inputs' dynamic dimensions (the first to `batch`, the second to
`tokens`: the ``[batch_size, sequence_length]`` inputs of a text-classification export), infers
every tensor's shape, and counts the multiply-adds of every MatMul, Gemm, MatMulInteger and
QLinearMatMul from its operands' shapes: ``[..., M, K] × [..., K, N]`` is ``batch·M·K·N``
multiply-adds, the leading dimensions broadcast as numpy does; a Gemm is ``M·K·N`` after its
``transA``/``transB``. One multiply-add is two operations (FLOPs for float, integer ops for int8).

The shapes come from ONNX Runtime's symbolic shape inference (``onnxruntime.tools.
symbolic_shape_infer``), not ``onnx.shape_inference.infer_shapes``: optimum's export computes
its position ids and attention reshapes from ``Shape`` → ``Gather`` → ``Unsqueeze`` →
``Slice``/``Concat`` of the inputs, and onnx's data propagation stops there even with
``data_prop=True``, leaving the batch dimension unknown at batch 1 (1 broadcast against an
unknown size is unknown), so the first projection's operand has no shape. ORT's inference
evaluates those shape computations and gives every tensor of the export a concrete shape.

Three figures, in operations per forward pass:

* ``fp32``: MatMul and Gemm on float32 operands.
* ``int8``: MatMulInteger and QLinearMatMul (dynamic quantization), and MatMul / Gemm whose two
  operands both come straight from DequantizeLinear (a static QDQ graph): ONNX Runtime fuses
  such a node with its DequantizeLinear inputs into an integer kernel (QLinearMatMul,
  MatMulIntegerToFloat, QGemm), so the work is int8 even though the graph spells it in float
  (the study's int8-static, optimized by ORT 1.32: its 48 QDQ MatMuls became QLinearMatMul).
  A product with only one dequantized operand stays float in ORT, and is counted as ``fp32``.
* ``attention``: the part of the total in products of two activations (neither operand a
  constant, i.e. an initializer, a Constant or anything computed from those alone). In a BERT-
  like export these are exactly Q·Kᵀ and scores·V, the terms that grow with tokens².

Elementwise and normalization ops (Add, Mul, Softmax, LayerNormalization, Erf/GELU, Tanh) and
the quantize/dequantize steps are left out: they cost a few operations per element of an
activation, O(tokens·hidden) plus the softmax's O(heads·tokens²), against O(tokens·hidden²) for
the projections. For MiniLM-L6 that is roughly 25 k operations per token and layer (GELU on the
1536-wide FFN, two LayerNorms, bias and residual adds) plus about 7·heads·tokens for the scaled,
masked softmax, against 3.5 M in the products: under 1 % at 15 tokens, under 2 % at 512, an
estimate not worth a per-op cost model. Embedding lookups (Gather) do no arithmetic. So the
figures are a floor of the arithmetic and the exact count of the matrix products, where the CPU
spends its time.

For MiniLM-L6 (hidden h = 384, intermediate i = 1536, 6 layers, 2 labels) the count equals the
closed form ``layers · (2·t·(4h² + 2hi) + 4·t²·h) + 2h² + 2h·labels`` per row of t tokens
(the last two terms: the pooler and the classifier on the [CLS] token alone): 320.9 MFLOP at
t = 15, about 21.2 MFLOP per token plus the attention's t² share. Every counted product is linear
in the batch, so a batch of n rows costs n times a row of the same (padded) length.

Refused rather than undercounted (:class:`UncountableGraph`): operators outside the default ONNX
domain (an ORT-optimized graph's fused Attention, SkipLayerNormalization, MatMulNBits, …, whose
shapes onnx's inference cannot see through: count the plain export instead), convolutions,
recurrent and Einsum ops, control flow (If, Loop, Scan hide products in subgraphs), float
products in another precision than float32, and any counted node whose operand shapes stay
unknown after inference.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto
from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

#: The counted ops and where their two multiplied operands are among the node's inputs.
OPERANDS = {"MatMul": (0, 1), "Gemm": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}
_INTEGER = {"MatMulInteger", "QLinearMatMul"}
# Default-domain ops with arithmetic of their own (or subgraphs) that this count does not read.
_REFUSED = {"Conv", "ConvInteger", "QLinearConv", "ConvTranspose", "Einsum", "LSTM", "GRU", "RNN"}
_REFUSED |= {"Attention", "If", "Loop", "Scan"}
_DEFAULT_DOMAINS = ("", "ai.onnx")


class UncountableGraph(ValueError):
    """A graph whose matrix products this module cannot count exactly."""


@dataclass(frozen=True)
class Flops:
    """Operations of one forward pass at `batch` rows of `tokens` tokens (2 per multiply-add)."""

    tokens: int
    batch: int
    fp32: int  # float32 MatMul / Gemm
    int8: int  # MatMulInteger, QLinearMatMul and QDQ products ORT runs as integer kernels
    attention: int  # the part of fp32 + int8 in activation × activation products

    @property
    def total(self) -> int:
        return self.fp32 + self.int8

    @property
    def macs(self) -> int:
        return self.total // 2

    @property
    def attention_share(self) -> float:
        return self.attention / self.total if self.total else 0.0


def _fix_inputs(model: onnx.ModelProto, tokens: int, batch: int) -> None:
    initializers = {t.name for t in model.graph.initializer}
    for graph_input in model.graph.input:
        if graph_input.name in initializers:  # IR < 4 lists initializers as inputs too
            continue
        for index, dim in enumerate(graph_input.type.tensor_type.shape.dim):
            if dim.HasField("dim_value"):
                continue
            if index > 1:
                raise UncountableGraph(
                    f"input {graph_input.name!r} has a dynamic dimension {index} "
                    "(only batch and sequence, the first two, are fixed here)"
                )
            dim.dim_value = (batch, tokens)[index]
    # Declared symbolic output and value_info shapes would clash with the fixed ones.
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")


def _refuse_unreadable(graph: onnx.GraphProto) -> None:
    odd = sorted(
        {
            f"{n.domain}.{n.op_type}" if n.domain not in _DEFAULT_DOMAINS else n.op_type
            for n in graph.node
            if n.domain not in _DEFAULT_DOMAINS or n.op_type in _REFUSED
        }
    )
    if odd:
        raise UncountableGraph(
            f"the graph has operators whose arithmetic is not counted: {', '.join(odd)} "
            "(for an ORT-optimized graph, count the plain export it was made from)"
        )


def _product_macs(op: str, a: list[int], b: list[int], node: onnx.NodeProto) -> int:
    if op == "Gemm":
        attrs = {at.name: at.i for at in node.attribute if at.name in ("transA", "transB")}
        m, k = reversed(a) if attrs.get("transA") else a
        k2, n = reversed(b) if attrs.get("transB") else b
        rows = 1
    else:  # numpy matmul: a vector operand is a one-row / one-column matrix
        a, b = ([1, *a] if len(a) == 1 else a), ([*b, 1] if len(b) == 1 else b)
        (m, k), (k2, n) = a[-2:], b[-2:]
        rows = math.prod(np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2])))
    if k != k2:
        raise UncountableGraph(f"{node.op_type} {node.name!r}: inner dimensions {k} and {k2}")
    return rows * m * k * n


def count(model: Path | onnx.ModelProto, tokens: int, batch: int = 1) -> Flops:
    """The matrix-product operations of one forward pass of `model` (a path to an ONNX file or
    a loaded graph, left unchanged) at `batch` rows of `tokens` tokens: see the module doc."""
    if tokens < 1 or batch < 1:
        raise ValueError(f"tokens and batch must be positive, not {tokens} and {batch}")
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)
    else:  # shapes come from the initializers' dims: their weights need not be read
        proto = onnx.load(str(model), load_external_data=False)
    _refuse_unreadable(proto.graph)
    _fix_inputs(proto, tokens, batch)
    graph = SymbolicShapeInference.infer_shapes(proto).graph

    shapes: dict[str, list[int] | None] = {}
    types: dict[str, int] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        known = tensor.HasField("shape") and None not in dims
        shapes[info.name] = [d for d in dims if d is not None] if known else None
        types[info.name] = tensor.elem_type
    constant = set()
    for init in graph.initializer:
        shapes[init.name], types[init.name] = list(init.dims), init.data_type
        constant.add(init.name)
    producer: dict[str, str] = {}
    for node in graph.node:  # topologically sorted, as ONNX requires
        producer.update(dict.fromkeys(node.output, node.op_type))
        if all(name in constant for name in node.input if name):
            constant.update(node.output)

    fp32 = int8 = attention = 0
    for node in graph.node:
        if node.op_type not in OPERANDS:
            continue
        names = [node.input[i] for i in OPERANDS[node.op_type]]
        a, b = (shapes.get(name) for name in names)
        if a is None or b is None:
            raise UncountableGraph(
                f"{node.op_type} {node.name!r}: operand shapes unknown after inference"
            )
        ops = 2 * _product_macs(node.op_type, a, b, node)
        if node.op_type in _INTEGER or all(producer.get(n) == "DequantizeLinear" for n in names):
            int8 += ops
        elif types.get(names[0]) == TensorProto.FLOAT:
            fp32 += ops
        else:
            kind = TensorProto.DataType.Name(types.get(names[0], 0))
            raise UncountableGraph(f"{node.op_type} {node.name!r} multiplies {kind}, not float32")
        if not any(name in constant for name in names):
            attention += ops
    return Flops(tokens=tokens, batch=batch, fp32=fp32, int8=int8, attention=attention)


@functools.lru_cache(maxsize=1024)
def _per_item(path: Path, stamp: tuple[int, int], tokens: int) -> Flops:
    del stamp  # part of the cache key only: a re-exported file is counted again
    return count(path, tokens, batch=1)


def per_item(model: Path, tokens: int) -> Flops:
    """The operations one request of `tokens` tokens (as the model sees them, [CLS] and [SEP]
    included) costs `model`: a row alone, which is also its share of a batch padded to `tokens`.
    Cached per file and token count, so a table of payloads loads the graph once per length."""
    path = Path(model).resolve()
    stat = path.stat()
    return _per_item(path, (stat.st_size, stat.st_mtime_ns), tokens)
