"""The human-labelled sentiment data the built-in `minilm-sentiment` model is trained on.

Two sources, both offline:

* `data/sentiment/sentences.tsv` — short English sentences written for this project
  (`label<TAB>text`, label POSITIVE or NEGATIVE); a fixed, hash-based fifth of them is
  held out for evaluation and never trained on, and a fixed, hash-based half of the rest is
  the calibration split of static int8 (`is_calibration`: never held out, so the faithfulness
  check judges every variant on the sentences outside it);
* the VADER lexicon (`vaderSentiment/vader_lexicon.txt`): words and phrases rated by
  ten human raters on a -4..+4 valence scale; only alphabetic entries whose mean rating is
  clearly positive or negative are used (training only).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import vaderSentiment

from servebench import paths

SENTENCES_TSV = paths.DATA / "sentiment" / "sentences.tsv"
VADER_LEXICON = Path(vaderSentiment.__file__).resolve().parent / "vader_lexicon.txt"
LABELS = ("NEGATIVE", "POSITIVE")
_WORD = re.compile(r"^[a-z][a-z' -]*[a-z]$")


@dataclass(frozen=True)
class Example:
    text: str
    label: int  # index into LABELS
    source: str  # "sentence" or "lexicon"


def is_held_out(text: str, fraction_denominator: int = 5) -> bool:
    """A stable split: the same sentence is always on the same side."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return digest[0] % fraction_denominator == 0


def is_calibration(text: str) -> bool:
    """The static int8 calibration split: half of the training sentences, by a hash salted
    apart from the held-out one's (so the halves are not correlated with it)."""
    if is_held_out(text):
        return False
    return hashlib.sha256(b"calibration:" + text.encode("utf-8")).digest()[0] % 2 == 0


def load_sentences(path: Path = SENTENCES_TSV) -> list[Example]:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != ["label", "text"]:
        raise ValueError(f"{path} must start with the header 'label<TAB>text'")
    examples = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        label, _, text = line.partition("\t")
        if label not in LABELS or not text.strip():
            raise ValueError(f"{path}:{number}: expected 'POSITIVE|NEGATIVE<TAB>text'")
        examples.append(Example(text.strip(), LABELS.index(label), "sentence"))
    return examples


def load_lexicon(min_abs_valence: float, path: Path = VADER_LEXICON) -> list[Example]:
    examples = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not _WORD.match(fields[0]):
            continue
        valence = float(fields[1])
        if abs(valence) >= min_abs_valence:
            examples.append(Example(fields[0], int(valence > 0), "lexicon"))
    return examples


def split_sentences(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    train = [e for e in examples if not is_held_out(e.text)]
    held_out = [e for e in examples if is_held_out(e.text)]
    return train, held_out


def calibration_split(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """(calibration, evaluation): the sentences that calibrate static int8 and all others."""
    calibration = [e for e in examples if is_calibration(e.text)]
    evaluation = [e for e in examples if not is_calibration(e.text)]
    return calibration, evaluation


def data_fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
