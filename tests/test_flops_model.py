"""servebench.models.flops on the study's default model (the exported fp32 graph, conftest's
`model_dir`) against the closed form of a BERT encoder read from its config.json, and on its
int8 variants made here with ONNX Runtime's quantizers in a temporary directory (the study's
own variants in data/models are left alone). The synthetic graphs are in tests/test_flops.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from servebench.models.flops import count, per_item

pytestmark = pytest.mark.system


def closed_form(config: dict, tokens: int) -> int:
    """Per layer: Q, K, V and output projections (4·h²) and the FFN (2·h·i) on every token,
    Q·Kᵀ and scores·V (2·t²·h); then the pooler (h×h) and classifier (h×labels) on [CLS]."""
    h, i = config["hidden_size"], config["intermediate_size"]
    labels = len(config["id2label"])
    layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * 2 * tokens * tokens * h
    return config["num_hidden_layers"] * layer + 2 * h * h + 2 * h * labels


@pytest.fixture(scope="module")
def config(model_dir: Path) -> dict:
    return json.loads((model_dir / "config.json").read_text())


@pytest.mark.parametrize("tokens", [15, 512])
def test_the_default_model_counts_as_the_closed_form(
    model_dir: Path, config: dict, tokens: int
) -> None:
    flops = count(model_dir / "model.onnx", tokens)
    assert flops.total == flops.fp32 == closed_form(config, tokens) and flops.int8 == 0
    h, layers = config["hidden_size"], config["num_hidden_layers"]
    assert flops.attention == layers * 2 * 2 * tokens * tokens * h
    assert count(model_dir / "model.onnx", tokens, batch=4).total == 4 * flops.total
    assert per_item(model_dir / "model.onnx", tokens) == flops


def test_minilm_costs_what_the_notes_say(model_dir: Path, config: dict) -> None:
    if config["hidden_size"] != 384 or config["num_hidden_layers"] != 6:
        pytest.fail(f"the default model is no longer MiniLM-L6: {config}")
    seed = count(model_dir / "model.onnx", 15)
    assert 320e6 < seed.total < 322e6  # ~21 MFLOP a token, attention well under 1 %
    assert seed.attention_share < 0.01
    assert 0.18 < count(model_dir / "model.onnx", 512).attention_share < 0.19


class Rows:
    """A few rows of token ids for ONNX Runtime's calibration."""

    def __init__(self, names: list[str]) -> None:
        rng = np.random.default_rng(0)
        ids = [rng.integers(1000, 2000, (1, 12)) for _ in range(2)]
        fill = {"attention_mask": np.ones_like, "token_type_ids": np.zeros_like}
        self.rows = iter([{n: fill.get(n, np.asarray)(i) for n in names} for i in ids])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.rows, None)


def test_int8_variants_do_the_same_products_as_integer_work(
    model_dir: Path, config: dict, tmp_path: Path
) -> None:
    import onnx
    from onnxruntime.quantization import QuantFormat, quantize_dynamic, quantize_static

    fp32 = model_dir / "model.onnx"
    names = [i.name for i in onnx.load(fp32, load_external_data=False).graph.input]
    dynamic, static = tmp_path / "int8.onnx", tmp_path / "int8-static.onnx"
    # As optimum makes the study's int8: every MatMul (attention's too) and the Gemms.
    quantize_dynamic(fp32, dynamic, extra_options={"MatMulConstBOnly": False})
    # As its int8-static: QDQ around the MatMuls only; the pooler and classifier stay float.
    quantize_static(
        fp32, static, Rows(names), quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"]
    )
    for tokens in (15, 512):
        base = count(fp32, tokens)
        int8 = count(dynamic, tokens)
        assert (int8.fp32, int8.int8, int8.attention) == (0, base.total, base.attention)
        qdq = count(static, tokens)
        assert qdq.total == base.total and qdq.attention == base.attention
        head = 2 * config["hidden_size"] * (config["hidden_size"] + len(config["id2label"]))
        assert (qdq.fp32, qdq.int8) == (head, base.total - head)
