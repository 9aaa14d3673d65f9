"""The `mixed` workload: a different text per request, with lengths spread like real traffic.

Every other load test sends one text over and over, so a batch never pads and batching looks
free. Real classification traffic mixes one-line messages with the odd long review, and one
500-token text padded into a batch of 12-token ones multiplies that batch's cost (levers.md
measured a naive batcher falling from 505 to 48 req/s on such traffic). This workload makes
that visible, the same way for every service.

Each request's text is drawn with a seeded generator from `data/sentiment/sentences.tsv`:

- most requests (SHORT_SHARE) are one sentence (8–25 tokens: chat messages, titles, tweets);
- MEDIUM_SHARE are a paragraph of MEDIUM_SENTENCES sentences (≈50–150 tokens: a short review);
- the rest (LONG_SHARE) are a long review of LONG_SENTENCES sentences, which reaches and often
  passes the model's maximum length (truncated there, as every service does).

Paragraphs join distinct sentences at random, so they read like a review only in length and
vocabulary; for the cost of serving, length is what matters. The sequence depends only on the
seed and the sentence file, so every service gets the same texts in the same order.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from servebench import paths

SHORT_SHARE = 0.90
MEDIUM_SHARE = 0.08
LONG_SHARE = 1.0 - SHORT_SHARE - MEDIUM_SHARE
MEDIUM_SENTENCES = (4, 12)
LONG_SENTENCES = (25, 60)
SENTENCES_FILE = paths.ROOT / "data" / "sentiment" / "sentences.tsv"


def source_sentences(path: Path = SENTENCES_FILE) -> list[str]:
    with path.open(newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle, delimiter="\t")]


def kind_of(draw: float) -> str:
    """The length class of a uniform draw in [0, 1)."""
    if draw < SHORT_SHARE:
        return "short"
    return "medium" if draw < SHORT_SHARE + MEDIUM_SHARE else "long"


def mixed_requests(count: int, seed: int, sentences: list[str] | None = None) -> list[str]:
    """`count` request texts, the same for a given seed and sentence list."""
    pool = sentences if sentences is not None else source_sentences()
    if not pool:
        raise ValueError("the mixed workload needs at least one source sentence")
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        kind = kind_of(rng.random())
        if kind == "short":
            texts.append(rng.choice(pool))
            continue
        low, high = MEDIUM_SENTENCES if kind == "medium" else LONG_SENTENCES
        size = rng.randint(low, high)
        picked = [pool[rng.randrange(len(pool))] for _ in range(size)]
        texts.append(" ".join(picked))
    return texts


def request_bodies(texts: list[str]) -> list[bytes]:
    return [json.dumps({"inputs": text}).encode() for text in texts]


def describe(texts: list[str], model_dir: Path) -> list[dict[str, int]]:
    """workload.csv's rows: each request's position, characters and tokens as the model's
    tokenizer counts them (special tokens included, after truncation to its maximum)."""
    from servekit.inference import Classifier

    classifier = Classifier(model_dir, threads=1)
    return [
        {
            "seq": seq,
            "chars": len(text),
            "tokens": int(classifier.encode(text)["input_ids"].shape[1]),
        }
        for seq, text in enumerate(texts)
    ]


def payload_tokens(
    payloads: dict[str, str], mixed_texts: list[str], model_dir: Path
) -> dict[str, list[int]]:
    """Each payload's tokens (one count) and the mixed workload's, one per request (under
    ``mixed``, when there is one), as the model's tokenizer counts them (:func:`describe`)."""
    counted = describe([*payloads.values(), *mixed_texts], model_dir)
    tokens = [row["tokens"] for row in counted]
    out = {name: [tokens[k]] for k, name in enumerate(payloads)}
    if mixed_texts:
        out["mixed"] = tokens[len(payloads) :]
    return out
