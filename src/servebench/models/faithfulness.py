"""Is a variant faithful to fp32? Label agreement, held-out accuracy and score drift.

int8 moves every logit a little (about 1e-2 here): the 1e-4 tolerance that holds between two
runtimes on one graph would refuse any quantized model, and says nothing about what a user
of a classifier sees, the label. So a variant is judged against fp32 on every sentence of
data/sentiment/sentences.tsv: the share of sentences given fp32's label (checked against
`min_label_agreement`, failing closed), the accuracy on the held-out fifth (never trained
on) beside fp32's, and the largest change of a class probability. Everything runs in process
through the services' own `Classifier` (tokenization, ONNX Runtime, softmax), one thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from servebench import paths
from servebench.models import sentiment_data as sd
from servebench.models.variants import BASE, VariantError, VariantResult

# variants.csv, one row per variant (the report reads these columns).
CSV_COLUMNS = [
    "variant", "isa", "quantization", "onnx_mb", "sentences", "label_agreement",
    "max_abs_score_diff", "held_out_accuracy", "fp32_held_out_accuracy", "model_dir",
]  # fmt: skip
IN_PROCESS_NOTE = "in process: the services' Classifier, 1 ONNX Runtime thread"
_SHOWN_DISAGREEMENTS = 5


@dataclass
class Faithfulness:
    variant: str
    model_dir: str
    sentences: int
    agreeing: int  # sentences given fp32's label
    max_abs_score_diff: float  # largest |probability - fp32's| over sentences and classes
    held_out_sentences: int
    held_out_accuracy: float | None  # None where accuracy means nothing (accuracy_note)
    fp32_held_out_accuracy: float | None
    accuracy_note: str = ""
    disagreements: list[dict[str, str]] = field(default_factory=list)

    @property
    def label_agreement(self) -> float:
        return self.agreeing / self.sentences if self.sentences else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label_agreement": self.label_agreement}


class Answers(NamedTuple):
    labels: list[str]  # what a service answers
    probabilities: np.ndarray  # sentences x classes


def answers(model_dir: str | Path, texts: Sequence[str]) -> Answers:
    """The services' answers for `texts` (labels from `classify`, the very request path) and
    the full probability vectors (to see how far scores move, whatever the label)."""
    from servekit.inference import Classifier, softmax

    classifier = Classifier(model_dir, threads=1)
    labels, rows = [], []
    for text in texts:
        labels.append(classifier.classify(text).label)
        logits = classifier.session.run([classifier.info.output], classifier.encode(text))[0]
        rows.append(softmax(logits[0].astype(np.float64)))
    return Answers(labels, np.array(rows))


def accuracy_note(fp32: VariantResult, labels: Sequence[str]) -> str:
    """Why held-out accuracy means nothing for this model ('' when it means something)."""
    if fp32.note:  # the export says so: distilbert-shape's random weights
        return f"accuracy is meaningless: {fp32.note}"
    if set(labels) != set(sd.LABELS):
        return (
            f"no accuracy: the model's labels ({', '.join(labels)}) are not the sentiment "
            f"data's ({', '.join(sd.LABELS)})"
        )
    return ""


def compare(
    variant: VariantResult,
    own: Answers,
    base: Answers,
    examples: Sequence[sd.Example],
    note: str,
) -> Faithfulness:
    """One variant's answers against fp32's on the same examples."""
    texts = [e.text for e in examples]
    agree = [a == b for a, b in zip(own.labels, base.labels, strict=True)]
    held = [i for i, e in enumerate(examples) if sd.is_held_out(e.text)]

    def accuracy(labels: Sequence[str]) -> float | None:
        if note or not held:
            return None
        return sum(labels[i] == sd.LABELS[examples[i].label] for i in held) / len(held)

    wrong = [i for i, same in enumerate(agree) if not same][:_SHOWN_DISAGREEMENTS]
    return Faithfulness(
        variant=variant.variant,
        model_dir=variant.output_dir,
        sentences=len(texts),
        agreeing=sum(agree),
        max_abs_score_diff=float(np.max(np.abs(own.probabilities - base.probabilities)))
        if texts
        else 0.0,
        held_out_sentences=len(held),
        held_out_accuracy=accuracy(own.labels),
        fp32_held_out_accuracy=accuracy(base.labels),
        accuracy_note=note,
        disagreements=[
            {"text": texts[i], "fp32": base.labels[i], "variant": own.labels[i]} for i in wrong
        ],
    )


def measure_faithfulness(
    results: Mapping[str, VariantResult], examples: Sequence[sd.Example] | None = None
) -> dict[str, Faithfulness]:
    """Every variant of `results` (fp32 included, trivially faithful) against fp32 on
    `examples` (default: all of data/sentiment/sentences.tsv). Loading each directory with
    the Classifier is also the check that the services can load it."""
    examples = list(sd.load_sentences() if examples is None else examples)
    texts = [e.text for e in examples]
    fp32 = results[BASE]
    base = answers(fp32.output_dir, texts)
    from servekit.inference import ServingInfo

    info = ServingInfo.read(Path(fp32.output_dir))
    note = accuracy_note(fp32, info.labels)
    measured = {}
    for name, result in results.items():
        own = base if name == BASE else answers(result.output_dir, texts)
        measured[name] = compare(result, own, base, examples, note)
    return measured


def check_agreement(result: Faithfulness, min_label_agreement: float) -> None:
    """Fail closed: VariantError unless the variant gives fp32's label on at least
    `min_label_agreement` of the sentences."""
    if result.sentences and result.label_agreement >= min_label_agreement:
        return
    shown = ""
    if result.disagreements:
        first = result.disagreements[0]
        shown = f"; e.g. {first['text'][:60]!r}: fp32 {first['fp32']}, "
        shown += f"{result.variant} {first['variant']}"
    raise VariantError(
        f"variant {result.variant!r} gives fp32's label on {result.label_agreement:.2%} of "
        f"{result.sentences} sentences ({result.agreeing}), below min_label_agreement="
        f"{min_label_agreement:g}: it is not faithful and will not be served{shown}"
    )


def _shown_path(path: Path) -> str:
    """Relative to the project root when inside it: a run directory stays readable elsewhere."""
    return str(path.relative_to(paths.ROOT)) if path.is_relative_to(paths.ROOT) else str(path)


def variants_frame(
    results: Mapping[str, VariantResult], faithful: Mapping[str, Faithfulness]
):  # -> pandas.DataFrame, columns CSV_COLUMNS (pandas imported lazily)
    """variants.csv: one row per variant, fp32 first."""
    import pandas as pd

    rows = []
    for name, r in results.items():
        f = faithful[name]
        rows.append(
            {
                "variant": name,
                "isa": r.isa or "",
                "quantization": r.quantization_summary,
                "onnx_mb": round(r.onnx_mb, 3),
                "sentences": f.sentences,
                "label_agreement": f.label_agreement,
                "max_abs_score_diff": f.max_abs_score_diff,
                "held_out_accuracy": f.held_out_accuracy,
                "fp32_held_out_accuracy": f.fp32_held_out_accuracy,
                "model_dir": _shown_path(Path(r.output_dir)),
            }
        )
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
