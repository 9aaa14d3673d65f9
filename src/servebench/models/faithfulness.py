"""Is a variant faithful to fp32, and do its answers depend on batch-mates?

int8 moves every logit a little (about 1e-2 here): the 1e-4 tolerance that holds between two
runtimes on one graph would refuse any quantized model, and says nothing about what a user
of a classifier sees, the label. So a variant is judged against fp32 on every sentence of
data/sentiment/sentences.tsv outside static int8's calibration split (no variant is judged on
texts it was calibrated on): the share given fp32's label (checked against
`min_label_agreement`, failing closed), the accuracy on the held-out fifth (never trained
on) beside fp32's (at most :func:`allowed_drop` lower, failing closed), and the largest
change of a class probability.

Batch invariance: each held-out sentence's answer alone against its answer in a padded batch
with other sentences and a longer text (a 512-token one, the long payload, then the medium
one), the way a batched service runs it. A variant whose largest difference is
at most :data:`INVARIANCE_TOLERANCE` is batch-invariant; the batched services' concurrent
parity check is strict for it (`measure.verify`). Everything runs in process through the
services' own `Classifier` (tokenization, ONNX Runtime, softmax), one thread.
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
    "max_abs_score_diff", "held_out_accuracy", "fp32_held_out_accuracy",
    "batch_max_abs_diff", "batch_label_flips", "batch_invariant", "model_dir",
]  # fmt: skip
#: Held-out accuracy may fall at most this far below fp32's (1 point) before a variant is
#: refused, or by one held-out sentence where one weighs more (:func:`allowed_drop`).
MAX_ACCURACY_DROP = 0.01
#: A variant whose answers move by at most this much with their batch-mates is batch-invariant
#: (fp32 rows move by ~1e-7 with the shape of the matrix products).
INVARIANCE_TOLERANCE = 1e-5
#: Batch-mates of each held-out sentence: this many other sentences and one longer text.
_BATCH_SENTENCES = 7
_COMPANIONS = ("long.txt", "medium.txt")  # data/payloads (501 and 55 tokens), after a text
# truncated to the model's 512 tokens (`reference`)
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
    batch_max_abs_diff: float = 0.0  # largest |probability alone - in a batch|
    batch_label_flips: int = 0  # held-out sentences whose label changed in a batch
    disagreements: list[dict[str, str]] = field(default_factory=list)

    @property
    def label_agreement(self) -> float:
        return self.agreeing / self.sentences if self.sentences else 0.0

    @property
    def batch_invariant(self) -> bool:
        return self.batch_max_abs_diff <= INVARIANCE_TOLERANCE

    @property
    def accuracy_drop(self) -> float:
        if self.held_out_accuracy is None or self.fp32_held_out_accuracy is None:
            return 0.0
        return self.fp32_held_out_accuracy - self.held_out_accuracy

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "label_agreement": self.label_agreement,
            "batch_invariant": self.batch_invariant,
        }


class Answers(NamedTuple):
    labels: list[str]  # what a service answers
    probabilities: np.ndarray  # sentences x classes


def answers(model_dir: str | Path, texts: Sequence[str]) -> Answers:
    """The services' answers for `texts` (labels from `classify`, the very request path) and
    the full probability vectors (to see how far scores move, whatever the label)."""
    from servekit.inference import Classifier

    classifier = Classifier(model_dir, threads=1)
    labels = [classifier.classify(text).label for text in texts]
    return Answers(labels, probabilities(classifier, texts))


def probabilities(classifier: Any, texts: Sequence[str]) -> np.ndarray:
    """A servekit `Classifier`'s probability vectors for `texts`, one text per call
    (sentences x classes, float64)."""
    from servekit.inference import softmax

    rows = []
    for text in texts:
        logits = classifier.session.run([classifier.info.output], classifier.encode(text))[0]
        rows.append(softmax(logits[0].astype(np.float64)))
    return np.array(rows)


def companions() -> list[str]:
    """The longer batch-mates: a truncated text, a long review, a paragraph."""
    from servebench.models.reference import REFERENCE_SENTENCES

    texts = [(paths.PAYLOADS / name).read_text(encoding="utf-8") for name in _COMPANIONS]
    return [next(r["text"] for r in REFERENCE_SENTENCES if r["kind"] == "truncated"), *texts]


class Invariance(NamedTuple):
    max_abs_diff: float  # largest |probability alone - in a batch| over sentences and classes
    label_flips: int  # sentences whose label changed in a batch


def batch_invariance(model_dir: str | Path, texts: Sequence[str]) -> Invariance:
    """Each of `texts` alone against in a padded batch: :data:`_BATCH_SENTENCES` sentences
    and a longer text (:func:`companions`, longest first, then the paragraph), padded on the
    right to the longest as the batched services pad (pad id, attention mask 0), one
    `session.run` per batch."""
    from servekit.inference import Classifier, softmax

    classifier = Classifier(model_dir, threads=1)
    alone = answers(model_dir, texts).probabilities
    longer = companions()
    worst, flips = 0.0, 0
    for start in range(0, len(texts), _BATCH_SENTENCES):
        group = list(texts[start : start + _BATCH_SENTENCES])
        # Each long mate once (a 512-token row costs ~30 short ones), the paragraph after.
        mate = longer[min(start // _BATCH_SENTENCES, len(longer) - 1)]
        rows = classifier.tokenizer.encode_rows([*group, mate], classifier.info.inputs)
        longest = max(len(ids) for ids in rows[classifier.info.inputs[0]])
        feed = classifier.padded(rows, list(range(len(group) + 1)), longest)
        logits = classifier.session.run([classifier.info.output], feed)[0]
        for row, text_index in enumerate(range(start, start + len(group))):
            batched = softmax(logits[row].astype(np.float64))
            worst = max(worst, float(np.max(np.abs(batched - alone[text_index]))))
            flips += int(batched.argmax() != alone[text_index].argmax())
    return Invariance(worst, flips)


def is_batch_invariant(model_dir: str | Path) -> bool:
    """:func:`batch_invariance` on the held-out sentences, within :data:`INVARIANCE_TOLERANCE`."""
    held_out = [e.text for e in sd.load_sentences() if sd.is_held_out(e.text)]
    return batch_invariance(model_dir, held_out).max_abs_diff <= INVARIANCE_TOLERANCE


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
    invariance: Invariance | None = None,
) -> Faithfulness:
    """One variant's answers against fp32's on the same examples (and its batch invariance,
    measured by :func:`batch_invariance`)."""
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
        batch_max_abs_diff=invariance.max_abs_diff if invariance else 0.0,
        batch_label_flips=invariance.label_flips if invariance else 0,
        disagreements=[
            {"text": texts[i], "fp32": base.labels[i], "variant": own.labels[i]} for i in wrong
        ],
    )


def measure_faithfulness(
    results: Mapping[str, VariantResult], examples: Sequence[sd.Example] | None = None
) -> dict[str, Faithfulness]:
    """Every variant of `results` (fp32 included, trivially faithful) against fp32 on
    `examples` (default: the sentences of data/sentiment/sentences.tsv outside the
    calibration split), and every variant's batch invariance on the held-out ones. Loading
    each directory with the Classifier is also the check that the services can load it."""
    if examples is None:
        examples = sd.calibration_split(sd.load_sentences())[1]
    examples = list(examples)
    texts = [e.text for e in examples]
    fp32 = results[BASE]
    base = answers(fp32.output_dir, texts)
    from servekit.inference import ServingInfo

    info = ServingInfo.read(Path(fp32.output_dir))
    note = accuracy_note(fp32, info.labels)
    held_out = [e.text for e in examples if sd.is_held_out(e.text)] or texts
    measured = {}
    for name, result in results.items():
        own = base if name == BASE else answers(result.output_dir, texts)
        invariance = batch_invariance(result.output_dir, held_out)
        measured[name] = compare(result, own, base, examples, note, invariance)
    return measured


def allowed_drop(held_out_sentences: int) -> float:
    """How far held-out accuracy may fall below fp32's: :data:`MAX_ACCURACY_DROP`, or one
    sentence where the held-out set is too small to resolve it (70 sentences: 1.4 points).
    A threshold finer than one sentence would let a single sentence decide: on an AVX2 host
    without VNNI (AMD EPYC, 2026-12-07) both int8 variants flip one of 70 held-out labels,
    where on AVX-512 VNNI hosts they flipped none."""
    if held_out_sentences <= 0:
        return MAX_ACCURACY_DROP
    return max(MAX_ACCURACY_DROP, 1 / held_out_sentences)


def check_agreement(result: Faithfulness, min_label_agreement: float) -> None:
    """Fail closed: VariantError, naming every shortfall, unless the variant gives fp32's
    label on at least `min_label_agreement` of the sentences and its held-out accuracy is at
    most :func:`allowed_drop` below fp32's."""
    short = []
    if not result.sentences or result.label_agreement < min_label_agreement:
        short.append(
            f"gives fp32's label on {result.label_agreement:.2%} of {result.sentences} "
            f"sentences ({result.agreeing}), below min_label_agreement={min_label_agreement:g}"
        )
    allowed = allowed_drop(result.held_out_sentences)
    if result.accuracy_drop > allowed + 1e-12:
        short.append(
            f"is right on {result.held_out_accuracy:.1%} of the {result.held_out_sentences} "
            f"held-out sentences, fp32 on {result.fp32_held_out_accuracy:.1%}: more than "
            f"{allowed:.1%} lower"
        )
    if not short:
        return
    shown = ""
    if result.disagreements:
        first = result.disagreements[0]
        shown = f"; e.g. {first['text'][:60]!r}: fp32 {first['fp32']}, "
        shown += f"{result.variant} {first['variant']}"
    raise VariantError(
        f"variant {result.variant!r} {' and '.join(short)}: it is not faithful and will not "
        f"be served{shown}"
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
                "batch_max_abs_diff": f.batch_max_abs_diff,
                "batch_label_flips": f.batch_label_flips,
                "batch_invariant": f.batch_invariant,
                "model_dir": _shown_path(Path(r.output_dir)),
            }
        )
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
