"""Tokenize + ONNX Runtime + softmax: the request-path code of the Python services.

The Rust PyO3 service (`rust-ffi`) imports this same module (`servekit.inference`), so both run
the identical Python inference code, as in the seed study; the harness checks and measures with
it too. Only numpy, onnxruntime and transformers (when a Classifier is made) are imported
here (transformers only by the seed's tokenizer front end, servekit.tokenize): torch must stay
out of the request path.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# transformers imports torch whenever it is installed (it is: optimum's exporter needs it),
# adding ~0.9 GB of RSS and ~8 s of start-up that play no part in serving. The services set
# USE_TORCH=0 before this import; a process that also exports (tests) may not.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

import numpy as np
import onnxruntime as ort

from servekit.plan import Limits, plan_all
from servekit.policy import BatchSettings
from servekit.tokenize import front_end

SERVING_FILE = "serving.json"
# Every file problem is fixed the same way: export the model directory again.
RE_EXPORT = "re-export the model with `make model` (or notebooks/01_export_model.ipynb)"


#: Tokenized texts, unpadded: per model input, one id list per text.
Rows = dict[str, list[list[int]]]


class ModelDirError(RuntimeError):
    """The model directory is missing or incomplete, or its serving.json is unusable."""


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    tokenization_us: int
    inference_us: int


@dataclass(frozen=True)
class BatchPrediction(Prediction):
    """One text's answer from `Classifier.classify_batch`: `tokenization_us` is the batch's one
    tokenizer call, `inference_us` the `run` of sub-batch number `sub_batch` (run order), which
    had `batch_size` rows."""

    batch_size: int
    sub_batch: int


def _field(data: dict[str, Any], name: str, kind: type, item: type | None = None) -> Any:
    """data[name] if it is a positive int, or a non-empty str/list/dict (of non-empty `item`s)."""
    value = data.get(name)
    ok = isinstance(value, kind) and not isinstance(value, bool) and bool(value)
    if ok and kind is int:
        ok = value > 0
    if ok and item is not None:
        members = value.values() if isinstance(value, dict) else value
        ok = all(isinstance(member, item) and member for member in members)
    if not ok:
        of = f" of non-empty {item.__name__}" if item else ""
        raise ValueError(f"'{name}' is missing or not a valid {kind.__name__}{of}")
    return value


@dataclass(frozen=True)
class ServingInfo:
    """serving.json, written by the exporter: the services read these facts, never derive them."""

    labels: tuple[str, ...]
    max_length: int
    inputs: tuple[str, ...]
    output: str
    files: dict[str, str]

    @classmethod
    def read(cls, model_dir: Path) -> ServingInfo:
        """The checked serving.json of `model_dir`, after checking every file it lists."""
        if not model_dir.is_dir():
            raise ModelDirError(
                f"model directory {model_dir} does not exist; run notebooks/01_export_model.ipynb "
                "(make model) first"
            )
        path = model_dir / SERVING_FILE
        if not path.is_file():
            raise ModelDirError(f"model directory {model_dir} has no {SERVING_FILE}; {RE_EXPORT}")
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            info = cls(
                labels=tuple(_field(data, "labels", list, str)),
                max_length=_field(data, "max_length", int),
                inputs=tuple(_field(data, "inputs", list, str)),
                output=_field(data, "output", str),
                files=_field(data, "files", dict, str),
            )
            if "onnx" not in info.files:
                raise ValueError("'files' names no 'onnx' graph")
        except (OSError, ValueError) as exc:  # ValueError covers JSON and UTF-8 errors
            raise ModelDirError(f"{path} is not valid: {exc}; {RE_EXPORT}") from None
        missing = [name for name in info.files.values() if not (model_dir / name).is_file()]
        if missing:
            raise ModelDirError(
                f"model directory {model_dir} lacks {', '.join(missing)} (listed in "
                f"{SERVING_FILE}); {RE_EXPORT}"
            )
        return info


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


class Classifier:
    """One ONNX Runtime session and one fast tokenizer for a single-text classifier."""

    def __init__(
        self, model_dir: str | Path, threads: int = 1, tokenizer_api: str = "transformers"
    ) -> None:
        """`tokenizer_api`: the tokenizer's front end (servekit.tokenize.TOKENIZER_APIS), the
        seed's by default."""
        self.model_dir = Path(model_dir)
        self.info = ServingInfo.read(self.model_dir)
        try:
            self.tokenizer = front_end(
                tokenizer_api,
                self.model_dir,
                self.info.files,
                self.info.inputs,
                self.info.max_length,
            )
        except ValueError as exc:
            raise ModelDirError(f"{self.model_dir}: {exc}") from None
        onnx = self.model_dir / self.info.files["onnx"]
        self.session = ort.InferenceSession(
            str(onnx), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        # A hand-edited directory would otherwise fail on every request instead of at start.
        declared = tuple(i.name for i in self.session.get_inputs())
        if declared != self.info.inputs:
            raise ModelDirError(
                f"{onnx} declares inputs {', '.join(declared)}, {SERVING_FILE} lists "
                f"{', '.join(self.info.inputs)}; {RE_EXPORT}"
            )

    def encode(self, text: str) -> dict[str, np.ndarray]:
        return self.tokenizer.encode(text, self.info.inputs)

    def classify(self, text: str) -> Prediction:
        started = time.perf_counter_ns()
        feed = self.encode(text)
        tokenized = time.perf_counter_ns()
        logits = self.session.run([self.info.output], feed)[0][0]
        inferred = time.perf_counter_ns()
        probabilities = softmax(logits.astype(np.float64))
        best = int(np.argmax(probabilities))
        return Prediction(
            label=self.info.labels[best],
            score=float(probabilities[best]),
            tokenization_us=(tokenized - started) // 1000,
            inference_us=(inferred - tokenized) // 1000,
        )

    def encode_rows(self, texts: Sequence[str]) -> Rows:
        """Texts tokenized (truncated, unpadded) in one call: per input, one id list per text."""
        return self.tokenizer.encode_rows(list(texts), self.info.inputs)

    def run_rows(self, rows: Rows, group: Sequence[int]) -> tuple[list[tuple[str, float]], int]:
        """CONTRACT.md "Batched services", steps 4-5 for one run: the `group`'s rows
        padded to its longest, one `run`; each row's (label, score) in `group`'s order, and the
        run's duration in µs."""
        longest = max(len(next(iter(rows.values()))[index]) for index in group)
        feed = self.padded(rows, group, longest)
        started = time.perf_counter_ns()
        logits = self.session.run([self.info.output], feed)[0]
        inference_us = (time.perf_counter_ns() - started) // 1000
        answers = []
        for row in range(len(group)):
            # Row by row through `softmax`, so a batch of one answers exactly as `classify`.
            probabilities = softmax(logits[row].astype(np.float64))
            best = int(np.argmax(probabilities))
            answers.append((self.info.labels[best], float(probabilities[best])))
        return answers, inference_us

    def classify_batch(
        self, texts: Sequence[str], limits: Limits | None = None
    ) -> list[BatchPrediction]:
        """Each text's answer, in input order, the texts known at once: one tokenizer call,
        then the sub-batches the scheduler would run for them (servekit.plan.plan_all; the
        batched service's defaults unless `limits`), one `run` each."""
        if not texts:
            return []
        started = time.perf_counter_ns()
        rows = self.encode_rows(texts)
        tokenization_us = (time.perf_counter_ns() - started) // 1000
        lengths = [len(ids) for ids in next(iter(rows.values()))]
        answers: list[BatchPrediction | None] = [None] * len(texts)
        for number, group in enumerate(plan_all(lengths, limits or BatchSettings().limits)):
            results, inference_us = self.run_rows(rows, group)
            for index, (label, score) in zip(group, results, strict=True):
                answers[index] = BatchPrediction(
                    label=label,
                    score=score,
                    tokenization_us=tokenization_us,
                    inference_us=inference_us,
                    batch_size=len(group),
                    sub_batch=number,
                )
        return [answer for answer in answers if answer is not None]

    def padded(self, rows: Rows, group: Sequence[int], longest: int) -> dict[str, np.ndarray]:
        """The `group`'s rows padded on the right: pad token id, attention mask and type 0."""
        feed: dict[str, np.ndarray] = {}
        for name in self.info.inputs:
            fill = self.tokenizer.pad_token_id if name == "input_ids" else 0
            array = np.full((len(group), longest), fill, dtype=np.int64)
            for row, index in enumerate(group):
                values = rows[name][index]
                array[row, : len(values)] = values
            feed[name] = array
        return feed

    def classify_tuple(self, text: str) -> tuple[str, float, int, int]:
        """The form the PyO3 service calls: plain Python types only."""
        p = self.classify(text)
        return p.label, p.score, p.tokenization_us, p.inference_us
