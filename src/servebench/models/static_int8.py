"""Static int8 with optimum, its recipe chosen by measurement (the `int8-static` variant).

Dynamic int8 (`DynamicQuantizeLinear`) takes each activation's scale over the whole batch
tensor, so a request's answer moves with its batch-mates. Static quantization fixes every
activation's range once, from calibration texts: rows are independent, at some cost in
speed and fidelity that depends on the recipe. So several recipes are made
(`variants.CANDIDATES`: calibration method, and whether attention's activation x activation
MatMuls are quantized too) and the most faithful is kept:

* calibration: `ORTQuantizer.fit` on the calibration split of data/sentiment/sentences.tsv
  (`sentiment_data.is_calibration`), tokenized as the services do and padded to one length
  (percentile and entropy calibration stack equal shapes);
* choice: the most labels agreeing with fp32 on the *selection* sentences (the training
  sentences outside the calibration split), then the smallest mean |score - fp32's| there.
  The held-out fifth, never trained on, calibrated on or chosen on, is left for judging;
* every candidate's figures are recorded in export.json (`selection`): agreement on the
  selection sentences and on every non-calibration sentence, score drift, batch-1 items/s.

Only MatMul is quantized (QDQ, per-channel int8 weights, uint8 activations, optimum's preset
for the detected instruction set): the pooler and classifier Gemms stay fp32, where a
two-class decision is made from a handful of values.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from datasets import Dataset
from optimum.onnxruntime import ORTQuantizer
from optimum.onnxruntime.configuration import AutoCalibrationConfig, QuantizationConfig

from servebench.models import sentiment_data as sd
from servebench.models.faithfulness import probabilities
from servebench.models.reference import SEED_SENTENCE
from servebench.models.serving_info import FILES
from servebench.models.variants import CANDIDATES, CHOSEN_BY, Candidate
from servekit.inference import Classifier

_SPEED_S = 1.0  # batch-1 timing of each candidate: indicative only (the run measures speed)


def activation_matmuls(graph: Path) -> list[str]:
    """MatMul nodes whose inputs are both activations (attention's scores and context)."""
    proto = onnx.load(str(graph), load_external_data=False)
    weights = {i.name for i in proto.graph.initializer}
    return [
        n.name
        for n in proto.graph.node
        if n.op_type == "MatMul" and not any(i in weights for i in n.input)
    ]


def calibration_dataset(classifier: Classifier, texts: Sequence[str]) -> Dataset:
    """`texts` tokenized as the services do, padded to the longest (one shape for all)."""
    rows = classifier.tokenizer.encode_rows(list(texts), classifier.info.inputs)
    longest = max(len(ids) for ids in rows[classifier.info.inputs[0]])
    padded = classifier.padded(rows, list(range(len(texts))), longest)
    return Dataset.from_dict({name: padded[name].tolist() for name in classifier.info.inputs})


def _calibration(candidate: Candidate, dataset: Dataset) -> Any:
    method = getattr(AutoCalibrationConfig, candidate.method)
    if candidate.percentile is not None:
        return method(dataset, percentile=candidate.percentile)
    return method(dataset)


Configure = Callable[[list[str]], QuantizationConfig]  # nodes left in fp32 -> the config
Assemble = Callable[[Path, Path], None]  # (directory, graph): a directory the services load


def make_candidate(
    candidate: Candidate, configure: Configure, fp32_dir: Path, dataset: Dataset, work: Path
) -> tuple[Path, QuantizationConfig]:
    """The candidate's quantized graph under `work` (model_quantized.onnx) and its config."""
    source = fp32_dir / FILES["onnx"]
    quantization = configure([] if candidate.attention_matmuls else activation_matmuls(source))
    quantizer = ORTQuantizer.from_pretrained(fp32_dir, file_name=FILES["onnx"])
    work.mkdir(parents=True, exist_ok=True)
    ranges = quantizer.fit(
        dataset=dataset,
        calibration_config=_calibration(candidate, dataset),
        onnx_augmented_model_name=work / "augmented.onnx",
        operators_to_quantize=quantization.operators_to_quantize,
    )
    quantizer.quantize(quantization, work, calibration_tensors_range=ranges)
    return work / f"{source.stem}_quantized.onnx", quantization


def _items_per_s(classifier: Classifier) -> float:
    feed = classifier.encode(SEED_SENTENCE)
    classifier.session.run(None, feed)
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < _SPEED_S:
        classifier.session.run(None, feed)
        calls += 1
    return calls / elapsed


def _agreeing(own: np.ndarray, base: np.ndarray, rows: Sequence[int]) -> int:
    return int(sum(own[i].argmax() == base[i].argmax() for i in rows))


def evaluate(
    directory: Path, fp32: np.ndarray, texts: Sequence[str], selection: Sequence[int]
) -> dict[str, Any]:
    """A candidate directory's figures against fp32's probabilities on `texts` (every
    non-calibration sentence; `selection` indexes the ones the choice may look at)."""
    classifier = Classifier(directory, threads=1)
    own = probabilities(classifier, texts)
    drift = np.abs(own - fp32).max(axis=1)
    return {
        "selection_agreeing": _agreeing(own, fp32, selection),
        "selection_mean_abs_score_diff": float(drift[list(selection)].mean()),
        "evaluation_agreeing": _agreeing(own, fp32, range(len(texts))),
        "evaluation_max_abs_score_diff": float(drift.max()),
        "batch1_items_per_s": round(_items_per_s(classifier), 1),
    }


def best(figures: dict[str, dict[str, Any]]) -> str:
    """The candidate `variants.CHOSEN_BY` picks (first listed on a tie)."""
    return min(
        figures,
        key=lambda n: (
            -figures[n]["selection_agreeing"],
            figures[n]["selection_mean_abs_score_diff"],
        ),
    )


def choose_and_make(
    fp32_dir: Path, work: Path, configure: Configure, assemble: Assemble
) -> tuple[Path, QuantizationConfig, dict[str, Any]]:
    """Make every candidate, measure them, keep the best: its graph, config and the record.

    `configure` is optimum's static preset for the CPU (the caller's recipe); `assemble`
    turns a graph into a loadable directory (fp32's tokenizer and config beside it), so each
    candidate is judged exactly as the services would load it."""
    base = Classifier(fp32_dir, threads=1)
    calibration, evaluation = sd.calibration_split(sd.load_sentences())
    texts = [e.text for e in evaluation]
    selection = [i for i, e in enumerate(evaluation) if not sd.is_held_out(e.text)]
    fp32 = probabilities(base, texts)
    dataset = calibration_dataset(base, [e.text for e in calibration])
    made: dict[str, tuple[Path, QuantizationConfig]] = {}
    figures: dict[str, dict[str, Any]] = {}
    for number, candidate in enumerate(CANDIDATES):
        started = time.perf_counter()
        graph, quantization = make_candidate(
            candidate, configure, fp32_dir, dataset, work / f"{number}.optimum"
        )
        directory = work / str(number)
        directory.mkdir(parents=True)
        assemble(directory, graph)
        made[candidate.name] = (directory / FILES["onnx"], quantization)
        figures[candidate.name] = {
            **candidate.to_dict(),
            **evaluate(directory, fp32, texts, selection),
            "make_s": round(time.perf_counter() - started, 2),
        }
    name = best(figures)
    record = {
        "calibration_sentences": len(calibration),
        "calibration_padded_to": len(dataset[0][base.info.inputs[0]]),
        "selection_sentences": len(selection),
        "evaluation_sentences": len(texts),
        "chosen": name,
        "chosen_by": CHOSEN_BY,
        "candidates": list(figures.values()),
    }
    graph, quantization = made[name]
    for other, (path, _) in made.items():
        if other != name:
            shutil.rmtree(path.parent, ignore_errors=True)
    return graph, quantization, record
