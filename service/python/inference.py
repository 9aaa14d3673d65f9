"""Tokenize + ONNX Runtime + softmax: the request-path code of the Python service.

The Rust PyO3 service (`rust-ffi`) imports this same module, so both run the
identical Python inference code, as in the seed study. Only numpy, onnxruntime
and transformers are imported here: torch must stay out of the request path.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

# transformers imports torch whenever it is installed (it is: optimum's exporter needs it),
# adding ~0.9 GB of RSS and ~8 s of start-up that play no part in serving. The services set
# USE_TORCH=0 before this import; a process that also exports (tests) may not.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer


class ModelDirError(RuntimeError):
    """The model directory is missing or incomplete."""


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    tokenization_us: int
    inference_us: int


def max_sequence_length(model_dir: Path) -> int:
    """min(tokenizer model_max_length, max_position_embeddings), per the contract."""
    config = json.loads((model_dir / "config.json").read_text())
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    positions = int(config.get("max_position_embeddings", 512))
    # transformers writes a huge sentinel when the tokenizer has no limit of its own.
    declared = int(tokenizer_config.get("model_max_length", positions) or positions)
    return min(declared, positions)


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits)
    exp = np.exp(shifted)
    return exp / exp.sum()


def check_model_dir(model_dir: Path) -> None:
    required = ("model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json")
    if not model_dir.is_dir():
        raise ModelDirError(
            f"model directory {model_dir} does not exist; run notebooks/01_export_model.ipynb "
            "(make model) first"
        )
    missing = [name for name in required if not (model_dir / name).is_file()]
    if missing:
        raise ModelDirError(f"model directory {model_dir} lacks {', '.join(missing)}")


class Classifier:
    """One ONNX Runtime session and one fast tokenizer for a single-text classifier."""

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        check_model_dir(self.model_dir)
        config = json.loads((self.model_dir / "config.json").read_text())
        self.id2label = {int(k): str(v) for k, v in config["id2label"].items()}
        self.max_length = max_sequence_length(self.model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir), use_fast=True)
        self.session = ort.InferenceSession(
            str(self.model_dir / "model.onnx"),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self.input_names = [i.name for i in self.session.get_inputs()]

    def encode(self, text: str) -> dict[str, np.ndarray]:
        encoded = self.tokenizer(
            text, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        return {name: encoded[name].astype(np.int64) for name in self.input_names}

    def logits(self, text: str) -> np.ndarray:
        return self.session.run(["logits"], self.encode(text))[0][0]

    def classify(self, text: str) -> Prediction:
        started = time.perf_counter_ns()
        feed = self.encode(text)
        tokenized = time.perf_counter_ns()
        logits = self.session.run(["logits"], feed)[0][0]
        inferred = time.perf_counter_ns()
        probabilities = softmax(logits.astype(np.float64))
        best = int(np.argmax(probabilities))
        return Prediction(
            label=self.id2label[best],
            score=float(probabilities[best]),
            tokenization_us=(tokenized - started) // 1000,
            inference_us=(inferred - tokenized) // 1000,
        )

    def classify_tuple(self, text: str) -> tuple[str, float, int, int]:
        """The form the PyO3 service calls: plain Python types only."""
        p = self.classify(text)
        return p.label, p.score, p.tokenization_us, p.inference_us
