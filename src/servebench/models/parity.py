"""PyTorch vs ONNX Runtime: the exported model must give the same logits as the source."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from servebench.models.reference import REFERENCE_SENTENCES, TOLERANCE, ReferenceSentence
from servekit.inference import ServingInfo

PARITY_FILE = "parity.json"
DEFAULT_TOLERANCE = TOLERANCE


class ParityError(RuntimeError):
    """ONNX Runtime logits differ from the PyTorch ones by more than the tolerance."""


@dataclass
class ParityResult:
    model_dir: str
    source: str
    tolerance: float
    max_abs_diff: float
    passed: bool
    max_length: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_frame(self):  # -> pandas.DataFrame (pandas imported lazily)
        import pandas as pd

        return pd.DataFrame(self.rows)


class _Pair:
    """The source model in PyTorch and the exported one in ONNX Runtime, same tokenizer."""

    def __init__(self, model_source: Path | str, model_dir: Path) -> None:
        # What the services read (serving.json), so parity truncates and feeds as they do.
        self.info = ServingInfo.read(model_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
        self.torch_model = AutoModelForSequenceClassification.from_pretrained(
            str(model_source)
        ).eval()
        self.session = ort.InferenceSession(
            str(model_dir / self.info.files["onnx"]), providers=["CPUExecutionProvider"]
        )
        self.id2label = {int(k): v for k, v in self.torch_model.config.id2label.items()}

    def compare(self, sentence: ReferenceSentence) -> dict[str, Any]:
        encoded = self.tokenizer(
            sentence.text, truncation=True, max_length=self.info.max_length, return_tensors="np"
        )
        feed = {name: encoded[name].astype(np.int64) for name in self.info.inputs}
        onnx_logits = self.session.run([self.info.output], feed)[0][0]
        with torch.inference_mode():
            inputs = {name: torch.from_numpy(value) for name, value in feed.items()}
            torch_logits = self.torch_model(**inputs).logits[0].numpy()
        diff = float(np.max(np.abs(onnx_logits.astype(np.float64) - torch_logits)))
        return {
            "id": sentence.id,
            "kind": sentence.kind,
            "chars": len(sentence.text),
            "tokens": int(feed["input_ids"].shape[1]),
            "torch_label": self.id2label[int(np.argmax(torch_logits))],
            "onnx_label": self.id2label[int(np.argmax(onnx_logits))],
            "torch_logits": [float(x) for x in torch_logits],
            "onnx_logits": [float(x) for x in onnx_logits],
            "max_abs_diff": diff,
        }


def _labels_agree(row: dict[str, Any], tolerance: float) -> bool:
    """Same argmax, unless PyTorch's top two logits are themselves within the tolerance."""
    top_two = sorted(row["torch_logits"])[-2:]
    return row["torch_label"] == row["onnx_label"] or top_two[1] - top_two[0] <= tolerance


def check_parity(
    model_source: Path | str,
    output_dir: str | Path,
    sentences: Sequence[ReferenceSentence] = REFERENCE_SENTENCES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ParityResult:
    """Compare logits on `sentences`; write parity.json; raise ParityError if over tolerance."""
    model_dir = Path(output_dir)
    pair = _Pair(model_source, model_dir)
    rows = [pair.compare(sentence) for sentence in sentences]
    for row in rows:
        row["ok"] = row["max_abs_diff"] <= tolerance and _labels_agree(row, tolerance)
    worst = max(row["max_abs_diff"] for row in rows)
    result = ParityResult(
        model_dir=str(model_dir),
        source=str(model_source),
        tolerance=tolerance,
        max_abs_diff=worst,
        passed=all(row["ok"] for row in rows),
        max_length=pair.info.max_length,
        rows=rows,
    )
    (model_dir / PARITY_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if not result.passed:
        bad = [row["id"] for row in rows if not row["ok"]]
        raise ParityError(
            f"ONNX Runtime and PyTorch disagree for {model_dir}: max |diff| {worst:.2e} "
            f"> tolerance {tolerance:.0e} (or labels differ) on {', '.join(bad)}; "
            f"see {model_dir / PARITY_FILE}"
        )
    return result
