"""The core's peak: how fast one core multiplies matrices through ONNX Runtime itself.

Every achieved figure of the study (a service's requests/sec times the model's arithmetic per
request, analysis/peak_share.py) is read as a share of what the same core does at best, on
the same run: ONNX Runtime's own MatMul (fp32) and MatMulInteger (uint8 × int8, the kernel
the int8 variants' MatMuls run on) with one thread, on the server CPU, over a few shapes -
a square 1024 one and the model's own weight shapes at a short and a long batch - the best
shape's rate taken as the peak. A vendor's datasheet figure would assume clocks and a
kernel this host and this library may not reach; a measured one is what the model's MatMuls
could get here. It is timed twice, before the rounds and after them, so a slow spell in
one does not set the peak low (the higher is used; both are written).

Run as a module it is that measurement, pinned by the caller, one CSV row per shape:
    python -m servebench.measure.peak --model MODEL.onnx --seconds 0.25
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from servebench import paths
from servebench.process import RUN_TAG, current_run_tag, pinned

#: Rows of the activation matrix: one seed-sized text (~16 tokens) and a batch of 16 of them,
#: so the rows also show how much of the peak a single short text can reach.
ROWS = (16, 256)
#: Weights narrower than this (a classifier's two labels) are no measure of a core's peak.
MIN_WIDTH = 64
#: The square shape the notes' peak was measured on (levers.md), always included.
SQUARE = (1024, 1024, 1024)
PRECISIONS = ("fp32", "int8")
#: Time per shape and precision, after one warm-up call.
SECONDS = 0.25
#: Far beyond the ~5 s it takes; a stuck process must not hold the run.
TIMEOUT_S = 120
FIELDS = ("precision", "m", "k", "n", "calls", "best_s", "gop_per_s")


@dataclass(frozen=True)
class Shape:
    m: int
    k: int
    n: int

    @property
    def ops(self) -> int:
        """Multiply-adds count twice, as FLOP counts do (models/flops.py)."""
        return 2 * self.m * self.k * self.n


def weight_shapes(model: Path) -> list[tuple[int, int]]:
    """The distinct (k, n) of the model's 2-D MatMul weights (initializers), largest first."""
    import onnx

    graph = onnx.load(str(model), load_external_data=False).graph
    weights = {init.name: tuple(init.dims) for init in graph.initializer if len(init.dims) == 2}
    found = set()
    for node in graph.node:
        if node.op_type not in ("MatMul", "MatMulInteger", "Gemm") or node.input[1] not in weights:
            continue
        k, n = (int(d) for d in weights[node.input[1]])
        transposed = any(a.name == "transB" and a.i == 1 for a in node.attribute)
        found.add((n, k) if transposed else (k, n))
    wide = [s for s in found if min(s) >= MIN_WIDTH]
    return sorted(wide, key=lambda s: (-s[0] * s[1], s))


def shapes(model: Path | None) -> list[Shape]:
    """The square shape, then each model weight shape at each of :data:`ROWS`."""
    own = weight_shapes(model) if model is not None else []
    return [Shape(*SQUARE), *(Shape(m, k, n) for k, n in own for m in ROWS)]


def matmul_model(precision: str, shape: Shape) -> bytes:
    """A one-node graph: A (input) × B (a constant weight), as the model's MatMuls are."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if precision == "fp32":
        weight = rng.standard_normal((shape.k, shape.n)).astype(np.float32)
        a_type, out_type, op = TensorProto.FLOAT, TensorProto.FLOAT, "MatMul"
    elif precision == "int8":
        # 7-bit weights, as ONNX Runtime's quantizer makes them for CPUs without VNNI
        # (reduce_range): there the u8 × s8 kernel (VPMADDUBSW) sums pairs of products in
        # int16, which full-range weights would saturate. The same kernel runs whatever
        # the values, so the timing is the same; the product is exact on every CPU.
        weight = rng.integers(-64, 64, (shape.k, shape.n)).astype(np.int8)
        a_type, out_type, op = TensorProto.UINT8, TensorProto.INT32, "MatMulInteger"
    else:
        raise ValueError(f"precision {precision!r}: one of {PRECISIONS}")
    node = helper.make_node(op, ["a", "b"], ["y"])
    graph = helper.make_graph(
        [node],
        "peak",
        [helper.make_tensor_value_info("a", a_type, [shape.m, shape.k])],
        [helper.make_tensor_value_info("y", out_type, [shape.m, shape.n])],
        [numpy_helper.from_array(weight, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def activation(precision: str, shape: Shape) -> np.ndarray:
    rng = np.random.default_rng(1)
    if precision == "fp32":
        return rng.standard_normal((shape.m, shape.k)).astype(np.float32)
    return rng.integers(0, 256, (shape.m, shape.k)).astype(np.uint8)


def time_shape(precision: str, shape: Shape, seconds: float) -> dict[str, float | int | str]:
    """One shape's best call over ``seconds`` (the best, not the median: the peak is what
    the core can do, and a slower call was interrupted, not representative)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        matmul_model(precision, shape), options, providers=["CPUExecutionProvider"]
    )
    feed = {"a": activation(precision, shape)}
    session.run(None, feed)  # the first call allocates and packs the weight
    best = float("inf")
    calls = 0
    deadline = time.perf_counter() + seconds
    while calls < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        session.run(None, feed)
        best = min(best, time.perf_counter() - started)
        calls += 1
    return {
        "precision": precision, "m": shape.m, "k": shape.k, "n": shape.n, "calls": calls,
        "best_s": best, "gop_per_s": shape.ops / best / 1e9,
    }  # fmt: skip


def measure(model: Path | None, seconds: float = SECONDS) -> Iterable[dict[str, float | int | str]]:
    for precision in PRECISIONS:
        for shape in shapes(model):
            yield time_shape(precision, shape, seconds)


def first_cpu(cpus: str | None) -> str | None:
    """The first CPU of a taskset list ('0-1,4' -> '0'): a core's peak needs one."""
    return cpus.split(",")[0].split("-")[0] if cpus else None


def command(model: Path, cpus: str | None, seconds: float = SECONDS) -> list[str]:
    """The measurement as a process on the first server CPU (one thread: a core's peak)."""
    first = first_cpu(cpus)
    argv = [sys.executable, "-m", "servebench.measure.peak", "--model", str(model)]
    return pinned([*argv, "--seconds", str(seconds)], first)


class PeakError(RuntimeError):
    """The measurement failed; says how."""


def run(model: Path, cpus: str | None, seconds: float = SECONDS) -> list[dict[str, str]]:
    """core_peak.csv's measured columns, one row per precision and shape, from a process
    pinned to the first server CPU with one thread; tagged with the run like every child."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", RUN_TAG: current_run_tag()}
    try:
        done = subprocess.run(
            command(model, cpus, seconds), capture_output=True, text=True, env=env,
            timeout=TIMEOUT_S, cwd=paths.ROOT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise PeakError(f"the core's peak took over {TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise PeakError(f"the core's peak failed (exit {done.returncode}): {tail[0]}")
    return list(csv.DictReader(io.StringIO(done.stdout)))


def best(rows: Iterable[dict[str, object]]) -> dict[str, float]:
    """The peak per precision: the best shape's GOP/s."""
    peaks: dict[str, float] = {}
    for row in rows:
        precision, rate = str(row["precision"]), float(str(row["gop_per_s"]))
        peaks[precision] = max(peaks.get(precision, 0.0), rate)
    return peaks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the core's MatMul peak through ONNX Runtime")
    parser.add_argument("--model", type=Path, help="take the weight shapes from this model")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    out = csv.DictWriter(sys.stdout, fieldnames=FIELDS)
    out.writeheader()
    for row in measure(args.model, args.seconds):
        out.writerow(row)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
